package dev.tally.models.train;

import dev.tally.autograd.Graph;
import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.plan.TracingAllocator;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.LlamaModel;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Activation recompute: same gradients to the bit, the activation bytes it should save, META = CPU, auto. */
class RecomputeTest {

    /**
     * Records every gradient it is handed (as float bits), then applies plain SGD so later steps start from weights the
     * previous update changed — in layer-wise mode in the middle of backward, before earlier layers are recomputed.
     */
    static final class Capture implements Optimizer {
        final List<Parameter> params;
        final Map<String, List<float[]>> grads = new LinkedHashMap<>();
        final List<String> hookOrder = new ArrayList<>();

        Capture(List<Parameter> params) { this.params = params; }

        @Override public String name() { return "capture"; }
        @Override public List<Parameter> parameters() { return params; }
        @Override public MemoryNeeds memoryNeeds() { return new MemoryNeeds(0, 0); }
        @Override public void allocateState(MemoryLedger ledger, MemoryNeeds planned) {}
        @Override public void step() { for (Parameter p : params) update(p); }
        @Override public void stepParameter(Parameter p) {
            hookOrder.add(p.name());
            update(p);
        }
        private void update(Parameter p) {
            grads.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(p.grad().toFloatArray());
            var ops = p.grad().ops();
            ops.binaryScalar(BinaryOp.MUL, p.grad(), -0.05, p.grad());
            ops.binary(BinaryOp.ADD, p.value(), p.grad(), p.value());
        }
        @Override public void zeroGrad() { for (Parameter p : params) p.grad().ops().fill(p.grad(), 0); }
        @Override public void setLrScale(double factor) {}
        @Override public double[] learningRates() { return new double[] {0.05}; }
        @Override public StateDict stateDict() { return new StateDict(Map.of(), Map.of()); }
        @Override public void loadStateDict(StateDict state) {}
    }

    record Run(List<Double> losses, Capture optimizer, int recomputed) {}

    static long[] tokens(int n, int salt) {
        long[] t = new long[n];
        for (int i = 0; i < n; i++) t[i] = ((i + salt) * 7919L + salt * 31L) % 251;
        return t;
    }

    static Trainer.Settings settings(String model, String loss, boolean layerwise, Recompute r, Device d) {
        return new Trainer.Settings(LlamaConfig.named(model), DType.F32, 2, 16, 1, loss, layerwise, d, 5, 0).withRecompute(r);
    }

    static Run train(String model, String loss, boolean layerwise, Recompute r, int steps) {
        Capture[] opt = new Capture[1];
        List<Double> losses = new ArrayList<>();
        try (Trainer t = new Trainer(settings(model, loss, layerwise, r, Device.CPU), ps -> opt[0] = new Capture(ps), new MemoryLedger())) {
            for (int s = 0; s < steps; s++) {
                losses.add(t.step(new long[][] {tokens(32, s)}, new long[][] {tokens(32, s + 1)}, 1.0));
            }
            assertEquals(t.activationPlan().size(), t.activationArena().highWater(), "planned = measured activations");
            assertEquals(0, t.activationArena().used(), "a step leaves no activation behind");
            return new Run(losses, opt[0], t.recomputedLayers());
        }
    }

    static void assertSameBits(Run a, Run b, String what) {
        assertEquals(a.losses(), b.losses(), what + ": losses");
        assertEquals(a.optimizer().grads.keySet(), b.optimizer().grads.keySet(), what + ": parameters");
        int steps = a.losses().size();
        for (int i = 0; i < steps; i++) { // step by step, so the first difference is the one reported
            for (var e : a.optimizer().grads.entrySet()) {
                List<float[]> x = e.getValue(), y = b.optimizer().grads.get(e.getKey());
                assertEquals(steps, x.size(), what + ": updates of " + e.getKey());
                assertEquals(steps, y.size(), what + ": updates of " + e.getKey());
                assertArrayEquals(x.get(i), y.get(i), what + ": gradient of " + e.getKey() + " at step " + i);
            }
        }
    }

    @Test
    void metaBooksWhatCpuBooksWithRecompute() {
        for (Recompute r : List.of(Recompute.LAYERS, new Recompute.First(2))) {
            for (boolean lw : new boolean[] {false, true}) {
                MemoryLedger cpu = new MemoryLedger(), meta = new MemoryLedger();
                try (Trainer a = new Trainer(settings("small", "cce", lw, r, Device.CPU), Capture::new, cpu);
                     Trainer b = new Trainer(settings("small", "cce", lw, r, Device.META), Capture::new, meta)) {
                    a.step(new long[][] {tokens(32, 0)}, new long[][] {tokens(32, 1)}, 1.0);
                    for (MemoryCategory c : MemoryCategory.values()) {
                        assertEquals(cpu.entry(Device.CPU, c).capacity(), meta.entry(Device.META, c).capacity(), r + " lw=" + lw + " " + c.label());
                    }
                    assertEquals(a.activationPlan(), b.activationPlan());
                    assertEquals(a.activationPlan().size(), a.activationArena().highWater());
                }
            }
        }
    }

    /** Bytes live at the end of forward (before the loss), from a META trace of the model's forward alone. */
    static long liveAfterForward(LlamaConfig c, int batch, int seq, int recomputed) {
        MemoryLedger ledger = new MemoryLedger();
        TracingAllocator trace = new TracingAllocator();
        try (LlamaModel m = new LlamaModel(c, DType.BF16, Device.META, ledger, 0);
             MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, Device.META, 1L << 40);
             MemoryArena acts = new MemoryArena(ledger, "acts", MemoryCategory.ACTIVATIONS, Device.META, 1L << 50, trace);
             MemoryArena loss = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.META, 1L << 40);
             MemoryArena grads = new MemoryArena(ledger, "grads", MemoryCategory.GRADS, Device.META, 1L << 50)) {
            Tensor ids = in.allocate("ids", DType.I64, batch, seq);
            Graph g = new Graph(acts, loss, p -> grads.allocate("g", DType.BF16, p.value().shape()), true);
            m.forward(g, ids, batch, seq, recomputed);
            long live = acts.used();
            g.close();
            return live;
        }
    }

    @Test
    void recomputeKeepsOnlyEachLayersInputAsAnIndependentCountSays() {
        LlamaConfig c = LlamaConfig.named("llama_60m");
        int b = 2, t = 128, n = b * t, d = c.hidden(), f = c.intermediate();
        // What a plain decoder layer keeps for backward, tensor by tensor (bf16 activations, fp32 RMSNorm statistics):
        // two norms' outputs and 1/rms, q, k (before and after RoPE), v, the attention probabilities and output, the o_proj
        // output, the residual sum, gate, up, their SwiGLU product, the down_proj output and the layer's output.
        long hid = MemoryArena.bookedBytes(DType.BF16, Shape.of(n, d)), inter = MemoryArena.bookedBytes(DType.BF16, Shape.of(n, f));
        long rstd = MemoryArena.bookedBytes(DType.F32, Shape.of(n)), probs = MemoryArena.bookedBytes(DType.BF16, Shape.of(b, c.heads(), t, t));
        long layerKeeps = 2 * (hid + rstd) + 5 * hid + probs + hid + hid + hid + 3 * inter + hid + hid;
        long recomputedKeeps = hid; // its output, the next layer's input
        long none = liveAfterForward(c, b, t, 0);
        for (int k : new int[] {1, 3, c.layers()}) {
            assertEquals(k * (layerKeeps - recomputedKeeps), none - liveAfterForward(c, b, t, k), "live bytes after forward, " + k + " layers recomputed");
        }
        // and the embedding output + final norm that are never recomputed: what remains with every layer recomputed
        long embeddingAndNorm = hid + hid + rstd;
        assertEquals(embeddingAndNorm + c.layers() * recomputedKeeps, liveAfterForward(c, b, t, c.layers()));
        assertEquals(embeddingAndNorm + c.layers() * layerKeeps, none);
    }

    @Test
    void autoPicksTheFewestLayersThatFit() {
        LlamaConfig c = LlamaConfig.named("llama_60m");
        Trainer.Settings s = new Trainer.Settings(c, DType.BF16, 2, 128, 1, "cce", false, Device.META, 0, 0);
        long[] bytes = new long[c.layers() + 1];
        for (int k = 0; k <= c.layers(); k++) {
            bytes[k] = Trainer.trace(s, k).bytes();
        }
        assertTrue(bytes[c.layers()] < bytes[0], "recomputing every layer plans less: " + bytes[c.layers()] + " vs " + bytes[0]);
        long fixed;
        try (Trainer t = new Trainer(s, Capture::new, new MemoryLedger())) {
            fixed = t.ledger().totalCapacity(Device.META) - t.activationPlan().size() - t.lossPlan().size();
        }
        long[] sorted = bytes.clone();
        java.util.Arrays.sort(sorted);
        for (long stepBytes : new long[] {sorted[0], sorted[1], sorted[4], sorted[c.layers()]}) {
            long budget = fixed + stepBytes;
            try (Trainer t = new Trainer(s.withRecompute(new Recompute.Auto(budget)), Capture::new, new MemoryLedger())) {
                int expected = 0;
                while (fixed + bytes[expected] > budget) expected++;
                assertEquals(expected, t.recomputedLayers(), "budget " + budget + ": " + t.recomputeNote());
                assertTrue(t.ledger().totalCapacity(Device.META) <= budget, t.recomputeNote());
                assertTrue(t.recomputeNote().contains(expected + " of " + c.layers()), t.recomputeNote());
            }
        }
        try (Trainer t = new Trainer(s.withRecompute(new Recompute.Auto(fixed + sorted[0] - 1)), Capture::new, new MemoryLedger())) {
            assertEquals(c.layers(), t.recomputedLayers());
            assertTrue(t.recomputeNote().contains("no number of recomputed layers fits"), t.recomputeNote());
        }
    }

    @Test
    void badRecomputeSettingsAreNamed() {
        assertThrows(IllegalArgumentException.class, () -> Recompute.parse("sometimes", 1));
        var e = assertThrows(IllegalArgumentException.class, () -> settings("tiny", "ce", false, new Recompute.First(3), Device.META));
        assertTrue(e.getMessage().contains("3 layers") && e.getMessage().contains("has 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Recompute.Auto(0));
        assertEquals(12L << 30, Recompute.parseBytes("12GiB"));
        assertEquals(24_000_000_000L, Recompute.parseBytes("24 GB"));
        assertEquals(1536L << 20, Recompute.parseBytes("1.5GiB"));
        assertThrows(IllegalArgumentException.class, () -> Recompute.parseBytes("-3GiB"));
        assertThrows(IllegalArgumentException.class, () -> Recompute.parseBytes("lots"));
    }
}
