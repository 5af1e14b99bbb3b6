package dev.tally.tests.train;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.plan.Planner;
import dev.tally.engine.testing.ChildJvm;
import dev.tally.engine.testing.PlanChecks;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.models.train.Trainer.StepMemory;
import dev.tally.optim.Optimizers;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * "The plan is the memory" checked by something other than the planner: the plans of real training steps pass the
 * replay check of {@link PlanChecks}, and steps run on the plan (its buffers poisoned with NaN when handed out and when
 * freed) give bit-identical losses, gradients and weights to the same steps with a separate region per buffer.
 */
class PlanCheckTest {
    private static Trainer.Settings settings(String model, int accumulation, String loss, boolean layerwise, double clip) {
        return new Trainer.Settings(LlamaConfig.named(model), DType.F32, 2, 32, accumulation, loss, layerwise, Device.CPU, 5, clip);
    }

    @Test
    void plansOfRealStepsPassTheReplayCheck() {
        for (Trainer.Settings s : List.of(settings("tiny", 1, "cce", false, 0), settings("tiny", 2, "ce", true, 0),
                settings("small", 1, "cce_exact", false, 1.0), settings("tiny", 2, "cce_fused", true, 0), new Trainer.Settings(LlamaConfig.named("small"), DType.BF16, 4, 64, 1,
                        "cce", false, Device.CPU, 1, 0))) {
            Trainer.StepTrace t = Trainer.traceStep(s);
            assertTrue(t.activations().size() > 100, "a real step allocates many activation buffers");
            PlanChecks.assertValid(t.activations(), Planner.plan(t.activations()));
            PlanChecks.assertValid(t.loss(), Planner.plan(t.loss()));
            assertEquals(Planner.plan(t.activations()), Planner.plan(Trainer.traceStep(s).activations()), "same settings, same plan");
        }
    }

    /** Records every gradient's bytes when the optimizer is about to use it, then delegates. */
    private static final class GradRecorder implements Optimizer {
        final Optimizer inner;
        final List<byte[]> grads = new ArrayList<>();

        GradRecorder(Optimizer inner) { this.inner = inner; }

        @Override public String name() { return inner.name(); }
        @Override public List<Parameter> parameters() { return inner.parameters(); }
        @Override public MemoryNeeds memoryNeeds() { return inner.memoryNeeds(); }
        @Override public void allocateState(MemoryLedger ledger, MemoryNeeds planned) { inner.allocateState(ledger, planned); }
        @Override public void step() {
            for (Parameter p : inner.parameters()) grads.add(bytes(p.grad()));
            inner.step();
        }
        @Override public void stepParameter(Parameter p) {
            grads.add(bytes(p.grad()));
            inner.stepParameter(p);
        }
        @Override public void zeroGrad() { inner.zeroGrad(); }
        @Override public void setLrScale(double factor) { inner.setLrScale(factor); }
        @Override public double[] learningRates() { return inner.learningRates(); }
        @Override public StateDict stateDict() { return inner.stateDict(); }
        @Override public void loadStateDict(StateDict state) { inner.loadStateDict(state); }
        @Override public void close() { inner.close(); }
    }

    static byte[] bytes(Tensor t) {
        MemorySegment host = MemorySegment.ofArray(new byte[Math.toIntExact(t.byteSize())]);
        t.ops().copyToHost(t, host);
        return host.toArray(ValueLayout.JAVA_BYTE);
    }

    /** Losses (exact bits), every gradient seen by the optimizer, and the final weights of a few steps. */
    private record Run(List<Long> losses, List<byte[]> grads, List<byte[]> weights) {}

    private static Run run(Trainer.Settings s, StepMemory memory, TextData data, int steps) {
        List<GradRecorder> recorder = new ArrayList<>();
        try (Trainer t = new Trainer(s, params -> {
            GradRecorder r = new GradRecorder(Optimizers.create("adamw", Map.of("lr", 0.01), params));
            recorder.add(r);
            return r;
        }, new MemoryLedger(), memory)) {
            List<Long> losses = new ArrayList<>();
            for (int step = 0; step < steps; step++) {
                long[][] in = new long[s.accumulation()][], tg = new long[s.accumulation()][];
                for (int k = 0; k < s.accumulation(); k++) {
                    long[][] b = data.trainBatch(s.seed(), (long) step * s.accumulation() + k, s.batch(), s.seq());
                    in[k] = b[0];
                    tg[k] = b[1];
                }
                losses.add(Double.doubleToRawLongBits(t.step(in, tg, 1.0)));
            }
            List<byte[]> weights = new ArrayList<>();
            for (Parameter p : t.model().parameters()) weights.add(bytes(p.value()));
            return new Run(losses, recorder.get(0).grads, weights);
        }
    }

    private static void assertSameRun(Run expected, Run actual, String what) {
        assertEquals(expected.losses, actual.losses, what + ": losses");
        assertEquals(expected.grads.size(), actual.grads.size(), what + ": gradients seen");
        for (int i = 0; i < expected.grads.size(); i++) assertArrayEquals(expected.grads.get(i), actual.grads.get(i), what + ": gradient #" + i);
        for (int i = 0; i < expected.weights.size(); i++) assertArrayEquals(expected.weights.get(i), actual.weights.get(i), what + ": weight #" + i);
    }

    /** Child-JVM side of {@link #theDebugPropertyPoisonsOrdinaryRuns}: does a default Trainer poison its step arenas? */
    public static void main(String[] args) {
        try (Trainer t = new Trainer(settings("tiny", 1, "cce", false, 0), p -> Optimizers.create("adamw", Map.of(), p), new MemoryLedger())) {
            System.out.println("POISON " + t.activationArena().poisonsBookings() + " " + t.lossArena().poisonsBookings() + " "
                    + t.gradArena().poisonsBookings());
        }
    }

    @Test
    void theDebugPropertyPoisonsOrdinaryRuns() {
        String cls = PlanCheckTest.class.getName();
        assertEquals(List.of("POISON true true true"), ChildJvm.run(List.of("-Dtally.debug.poison=true"), cls, List.of(), 300).lines("POISON"));
        assertEquals(List.of("POISON false false false"), ChildJvm.run(List.of(), cls, List.of(), 300).lines("POISON"));
    }

    @Test
    void plannedStepsEqualStepsWithSeparateBuffersBitForBit() throws IOException {
        TextData data = TextData.load(TextData.BUNDLED, new Tokenizer.Bytes(), 0.05);
        for (Trainer.Settings s : List.of(settings("tiny", 2, "cce", false, 1.0), settings("tiny", 1, "ce", true, 0),
                settings("tiny", 2, "cce_fused", false, 1.0))) {
            Run separate = run(s, new StepMemory(true, true), data, 3);
            assertTrue(separate.losses.stream().allMatch(l -> Double.isFinite(Double.longBitsToDouble(l))), "finite losses");
            assertSameRun(separate, run(s, new StepMemory(false, true), data, 3), "planned + poisoned vs separate, " + s);
            assertSameRun(separate, run(s, new StepMemory(false, false), data, 3), "planned vs separate, " + s);
        }
    }
}
