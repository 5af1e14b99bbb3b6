package dev.tally.tests.train;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.LrSchedule;
import dev.tally.models.train.Trainer;
import dev.tally.optim.Optimizers;
import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingTest {
    static final String TEXT = """
            It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.
            However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so
            well fixed in the minds of the surrounding families, that he is considered the rightful property of some one or other
            of their daughters. My dear Mr. Bennet, said his lady to him one day, have you heard that Netherfield Park is let at last?
            """.repeat(4);

    static long[][] batch(byte[] text, int start, int batch, int seq, boolean targets) {
        long[] out = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                int at = (start + b * 37 + t + (targets ? 1 : 0)) % text.length;
                out[b * seq + t] = text[at] & 0xFF;
            }
        }
        return new long[][] {out};
    }

    static Trainer trainer(String optimizer, String loss, boolean layerwise, Device device, MemoryLedger ledger) {
        Trainer.Settings s = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, 4, 32, 1, loss, layerwise, device, 7, 0);
        Map<String, Object> h = new java.util.HashMap<>(Map.of("lr", 3e-3, "weight_decay", 0.0));
        if (optimizer.startsWith("galore") || optimizer.equals("apollo")) h.put("rank", 16L); // the tiny model is 64 wide
        return new Trainer(s, params -> Optimizers.create(optimizer, h, params), ledger);
    }

    @Test
    void tinyModelLearnsRealTextAndPlannedEqualsMeasured() {
        byte[] text = TEXT.getBytes(StandardCharsets.US_ASCII);
        MemoryLedger ledger = new MemoryLedger();
        try (Trainer t = trainer("adamw", "cce", false, Device.CPU, ledger)) {
            System.out.print(t.planReport());
            double first = 0, last = 0;
            LrSchedule sched = new LrSchedule(5, 60, 0.1);
            for (int step = 0; step < 60; step++) {
                int at = (step * 131) % text.length;
                double l = t.step(batch(text, at, 4, 32, false), batch(text, at, 4, 32, true), sched.factor(step));
                if (step < 3) first += l / 3;
                if (step >= 57) last += l / 3;
            }
            System.out.printf("loss %.3f -> %.3f%n", first, last);
            assertTrue(first > 5.0, "starts near ln(256) = 5.55: " + first);
            assertTrue(last < first - 2.0, "loss falls by more than 2 nats: " + first + " -> " + last);
            assertEquals(t.activationPlan().size(), t.activationArena().highWater(), "planned = measured (activations)");
            assertEquals(t.lossPlan().size(), t.lossArena().highWater(), "planned = measured (loss)");
            assertEquals(0, t.activationArena().used(), "a step leaves no activation behind");
        }
        assertTrue(ledger.arenas().isEmpty(), "closing the trainer frees every arena, the optimizer's included: " + ledger.arenas());
    }

    /**
     * {@code --loss cce_fused} (the gradients computed in forward) trains the model the paper's CCE trains: the same
     * losses to fp32 rounding over ten AdamW steps, with the loss arena's plan what the step books.
     */
    @Test
    void cceFusedTrainsLikeCce() {
        byte[] text = TEXT.getBytes(StandardCharsets.US_ASCII);
        double[][] losses = new double[2][10];
        String[] names = {"cce", "cce_fused"};
        for (int k = 0; k < 2; k++) {
            try (Trainer t = trainer("adamw", names[k], false, Device.CPU, new MemoryLedger())) {
                for (int step = 0; step < 10; step++) {
                    int at = (step * 131) % text.length;
                    losses[k][step] = t.step(batch(text, at, 4, 32, false), batch(text, at, 4, 32, true), 1.0);
                }
                assertEquals(t.lossPlan().size(), t.lossArena().highWater(), "planned = measured (loss), " + names[k]);
            }
        }
        for (int step = 0; step < 10; step++) {
            assertEquals(losses[0][step], losses[1][step], 1e-4 * losses[0][step], "step " + step + " loss, cce vs cce_fused");
        }
        assertTrue(losses[1][9] < losses[1][0] - 0.5, "it learns: " + losses[1][0] + " -> " + losses[1][9]);
    }

    @Test
    void metaLedgerEqualsCpuLedger() {
        for (String opt : new String[] {"adamw", "apollo_mini", "galore_adamw8bit"}) {
            MemoryLedger cpu = new MemoryLedger(), meta = new MemoryLedger();
            try (Trainer a = trainer(opt, "ce", false, Device.CPU, cpu); Trainer b = trainer(opt, "ce", false, Device.META, meta)) {
                for (MemoryCategory c : MemoryCategory.values()) {
                    assertEquals(cpu.entry(Device.CPU, c).capacity(), meta.entry(Device.META, c).capacity(), opt + " " + c.label());
                }
                assertTrue(cpu.entry(Device.CPU, MemoryCategory.OPTIMIZER_STATE).capacity() > 0);
            }
        }
    }

    @Test
    void layerwiseKeepsOneGradientAliveAndStillLearns() {
        byte[] text = TEXT.getBytes(StandardCharsets.US_ASCII);
        MemoryLedger ledger = new MemoryLedger();
        try (Trainer t = trainer("adamw", "cce", true, Device.CPU, ledger)) {
            long largest = t.model().parameters().stream()
                    .mapToLong(p -> dev.tally.engine.MemoryArena.bookedBytes(DType.F32, p.value().shape())).max().orElseThrow();
            assertEquals(largest, t.gradArena().capacity(), "grads arena holds one (the largest) gradient");
            double first = 0, last = 0;
            for (int step = 0; step < 40; step++) {
                int at = (step * 131) % text.length;
                double l = t.step(batch(text, at, 4, 32, false), batch(text, at, 4, 32, true), 1.0);
                if (step < 3) first += l / 3;
                if (step >= 37) last += l / 3;
            }
            assertTrue(last < first - 1.5, "layer-wise AdamW learns: " + first + " -> " + last);
            assertEquals(largest, ledger.entry(Device.CPU, MemoryCategory.GRADS).peak(), "never more than one gradient alive");
            assertTrue(t.model().parameters().stream().allMatch(p -> p.grad() == null), "gradients freed after their update");
        }
    }

    /** Counts what the trainer asks of its optimizer: a planned run must not size the optimizer again. */
    private static final class Watched implements Optimizer {
        final Optimizer inner;
        int needsAsked;
        Optimizer.MemoryNeeds allocatedWith;

        Watched(Optimizer inner) { this.inner = inner; }

        @Override public String name() { return inner.name(); }
        @Override public List<Parameter> parameters() { return inner.parameters(); }
        @Override public MemoryNeeds memoryNeeds() { needsAsked++; return inner.memoryNeeds(); }
        @Override public void allocateState(MemoryLedger l, MemoryNeeds planned) { allocatedWith = planned; inner.allocateState(l, planned); }
        @Override public void step() { inner.step(); }
        @Override public void stepParameter(Parameter p) { inner.stepParameter(p); }
        @Override public void zeroGrad() { inner.zeroGrad(); }
        @Override public void setLrScale(double factor) { inner.setLrScale(factor); }
        @Override public double[] learningRates() { return inner.learningRates(); }
        @Override public StateDict stateDict() { return inner.stateDict(); }
        @Override public void loadStateDict(StateDict state) { inner.loadStateDict(state); }
        @Override public void close() { inner.close(); }
    }

    @Test
    void aRunBuiltFromItsPlanBooksThePlanWithoutPlanningAgain() {
        byte[] text = TEXT.getBytes(StandardCharsets.US_ASCII);
        Trainer.Settings s = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, 4, 32, 1, "cce", false, Device.CPU, 7, 0);
        List<Watched> built = new ArrayList<>();
        Function<List<Parameter>, Optimizer> factory = ps -> {
            Watched w = new Watched(Optimizers.create("galore_adamw8bit", Map.of("lr", 3e-3, "weight_decay", 0.0, "rank", 16L), ps));
            built.add(w);
            return w;
        };
        Trainer.Plan plan = Trainer.plan(s, factory);
        assertEquals(1, built.size());
        assertEquals(1, built.get(0).needsAsked, "the plan sizes the optimizer once (one dry run on META)");
        assertTrue(plan.report().contains("on cpu"), plan.report());
        MemoryLedger ledger = new MemoryLedger(), direct = new MemoryLedger();
        try (Trainer t = new Trainer(plan, ledger); Trainer d = trainer("galore_adamw8bit", "cce", false, Device.CPU, direct)) {
            Watched real = built.get(1);
            assertEquals(0, real.needsAsked, "the real optimizer takes the plan's needs: no second dry run");
            assertEquals(plan.optimizerNeeds(), real.allocatedWith);
            assertSame(plan.activations(), t.activationPlan(), "no second trace: the plan's activation plan is used");
            assertSame(plan.loss(), t.lossPlan());
            for (MemoryCategory c : MemoryCategory.values()) {
                assertEquals(plan.bytes().get(c), ledger.entry(Device.CPU, c).capacity(), "planned = booked: " + c.label());
            }
            assertEquals(plan.totalBytes(), ledger.totalCapacity(Device.CPU));
            for (int step = 0; step < 3; step++) {
                int at = (step * 131) % text.length;
                double a = t.step(batch(text, at, 4, 32, false), batch(text, at, 4, 32, true), 1.0);
                double b = d.step(batch(text, at, 4, 32, false), batch(text, at, 4, 32, true), 1.0);
                assertEquals(b, a, 0.0, "a planned run is the same run as one built directly, step " + step);
            }
        }
    }

    @Test
    void theReportedLearningRateIsTheOneTheUpdateApplied() {
        byte[] text = TEXT.getBytes(StandardCharsets.US_ASCII);
        MemoryLedger ledger = new MemoryLedger();
        try (Trainer t = trainer("adamw", "cce", false, Device.CPU, ledger)) { // lr 3e-3, no weight decay
            Parameter w = t.model().parameter("layers.0.mlp.up_proj.weight");
            float[] before = w.value().toFloatArray();
            t.step(batch(text, 0, 4, 32, false), batch(text, 0, 4, 32, true), 0.4);
            float[] after = w.value().toFloatArray();
            // Adam's first step moves every weight by lr·g/(|g| + eps) ≈ ±lr: the largest move is the lr used
            double moved = 0;
            for (int i = 0; i < before.length; i++) moved = Math.max(moved, Math.abs((double) after[i] - before[i]));
            double[] reported = t.lastLearningRates();
            assertEquals(1, reported.length);
            assertEquals(3e-3 * 0.4, reported[0], 1e-18);
            assertEquals(reported[0], moved, reported[0] * 1e-3, "the weights moved by the reported lr");
        }
    }

    @Test
    void llama7bPlansOnMetaInSeconds() {
        MemoryLedger ledger = new MemoryLedger();
        LlamaConfig c = LlamaConfig.named("llama_7b");
        Trainer.Settings s = new Trainer.Settings(c, DType.BF16, 1, 256, 1, "cce", false, Device.META, 0, 0);
        try (Trainer t = new Trainer(s, params -> Optimizers.create("apollo_mini", Map.of(), params), ledger)) {
            System.out.print(t.planReport());
            long params = 0;
            for (int[] shape : c.parameterShapes().values()) {
                long n = 1;
                for (int d : shape) n *= d;
                params += n;
            }
            assertEquals(6_738_415_616L, params, "LLaMA-7B parameter count (untied head)");
            long weights = ledger.entry(Device.META, MemoryCategory.WEIGHTS).capacity();
            assertTrue(weights >= 2 * params && weights - 2 * params < 256L * c.parameterShapes().size(), "bf16 weights ≈ 2 bytes/param: " + weights);
        }
    }

    @Test
    void fusedAttentionIsTheCpuDefaultDropsTheProbabilitiesFromThePlanAndMetaStillEqualsCpu() {
        long materialized, fused, byDefault;
        String before = System.getProperty("tally.attention");
        try {
            System.setProperty("tally.attention", "materialized");
            MemoryLedger plain = new MemoryLedger();
            try (Trainer t = trainer("adamw", "ce", false, Device.META, plain)) {
                materialized = t.activationPlan().size();
            }
            System.setProperty("tally.attention", "fused");
            MemoryLedger cpu = new MemoryLedger(), meta = new MemoryLedger();
            try (Trainer a = trainer("adamw", "ce", false, Device.CPU, cpu); Trainer b = trainer("adamw", "ce", false, Device.META, meta)) {
                fused = b.activationPlan().size();
                assertEquals(a.activationPlan().size(), fused, "META plans what CPU runs");
                byte[] text = TEXT.getBytes(StandardCharsets.US_ASCII);
                double l = a.step(batch(text, 0, 4, 32, false), batch(text, 0, 4, 32, true), 1.0);
                assertTrue(l > 5.0 && l < 6.0, "a fused-attention step trains: loss " + l);
                assertEquals(a.activationPlan().size(), a.activationArena().highWater(), "planned = measured with fused attention");
            }
            // no property: the CPU (and META planning for it) runs the fused path
            System.clearProperty("tally.attention");
            try (Trainer c = trainer("adamw", "ce", false, Device.CPU, new MemoryLedger())) {
                byDefault = c.activationPlan().size();
            }
            // a plan for CUDA (no fused kernel there) is traced with the materialized path although it is traced on META
            Trainer.Settings cuda = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, 4, 32, 1, "ce", false, Device.cuda(0), 7, 0);
            Map<String, Object> h = Map.of("lr", 3e-3, "weight_decay", 0.0);
            assertEquals(materialized, Trainer.plan(cuda, params -> Optimizers.create("adamw", h, params)).activations().size(),
                    "a CUDA plan books the probabilities");
            System.setProperty("tally.attention", "flash");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> trainer("adamw", "ce", false, Device.META, new MemoryLedger()).close());
            assertTrue(e.getMessage().contains("tally.attention") && e.getMessage().contains("flash"), e.getMessage());
        } finally {
            if (before == null) System.clearProperty("tally.attention"); else System.setProperty("tally.attention", before);
        }
        assertEquals(fused, byDefault, "fused attention is the CPU default");
        // tiny: batch 4, 4 heads, seq 32; the probabilities of one layer live at a time in the plan's peak at least
        long probs = 4L * 4 * 4 * 32 * 32;
        System.out.printf("activation plan: materialized %d B, fused %d B%n", materialized, fused);
        assertTrue(materialized - fused >= probs, "the plan drops at least one layer's probabilities: " + materialized + " -> " + fused);
    }
}
