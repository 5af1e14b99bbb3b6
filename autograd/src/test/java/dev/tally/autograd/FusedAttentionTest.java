package dev.tally.autograd;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused causal attention (the default) against the materialized path through the graph: same output and the same
 * q, k, v gradients within fp32 tolerance, and without the [B, H, T, T] probabilities in the activation arena.
 */
class FusedAttentionTest {
    private static final int B = 2, T = 100, H = 4, DH = 16; // T crosses the fused kernel's 64-row blocks

    private record Run(float[] out, float[][] grads, long peak) {}

    private static Run run(boolean fused) {
        MemoryLedger ledger = new MemoryLedger();
        SplittableRandom r = new SplittableRandom(5);
        try (MemoryArena acts = new MemoryArena(ledger, "acts", MemoryCategory.ACTIVATIONS, Device.CPU, 8L << 20);
             MemoryArena loss = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 1L << 16);
             MemoryArena params = new MemoryArena(ledger, "params", MemoryCategory.WEIGHTS, Device.CPU, 4L << 20)) {
            Parameter[] qkv = new Parameter[3];
            for (int i = 0; i < 3; i++) {
                Tensor x = params.allocate("x" + i, DType.F32, B * T, H * DH);
                double[] v = new double[B * T * H * DH];
                for (int j = 0; j < v.length; j++) v[j] = r.nextGaussian();
                x.copyFrom(v);
                qkv[i] = new Parameter("x" + i, x);
                Tensor g = params.allocate("g" + i, DType.F32, B * T, H * DH);
                g.ops().fill(g, 0);
                qkv[i].setGrad(g);
            }
            double[] w = new double[B * T * H * DH];
            for (int j = 0; j < w.length; j++) w[j] = r.nextGaussian();
            Graph g = new Graph(acts, loss, Parameter::grad, true).fusedAttention(fused);
            long before = acts.used();
            Var out = Functions.causalAttention(g, g.param(qkv[0]), g.param(qkv[1]), g.param(qkv[2]), B, T, H);
            long peak = acts.used() - before;
            float[] o = out.value().toFloatArray();
            Tensor seed = acts.allocate("seed", DType.F32, out.value().shape()).copyFrom(w);
            Var l = Functions.externalLoss(g, List.of(out), new Functions.ExternalLoss() {
                @Override public void forward(Tensor t) { t.copyFrom(new double[] {0}); }
                @Override public void backward(Tensor dLoss, Graph gr) {
                    Tensor go = Functions.gradOf(gr, out);
                    go.ops().binary(dev.tally.engine.BinaryOp.ADD, go, seed, go);
                }
                @Override public void discard() {}
            });
            g.backward(l, 1.0);
            g.close();
            acts.free(seed);
            return new Run(o, new float[][] {qkv[0].grad().toFloatArray(), qkv[1].grad().toFloatArray(), qkv[2].grad().toFloatArray()}, peak);
        }
    }

    @Test
    void fusedEqualsMaterializedWithoutTheProbabilities() {
        Run fused = run(true), plain = run(false);
        close(plain.out, fused.out, "out");
        String[] names = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++) close(plain.grads[i], fused.grads[i], names[i]);
        long probs = 4L * B * H * T * T;
        System.out.printf("forward activations: materialized %d B, fused %d B (probabilities %d B)%n", plain.peak, fused.peak, probs);
        long lse = (4L * B * H * T + MemoryArena.ALIGNMENT - 1) / MemoryArena.ALIGNMENT * MemoryArena.ALIGNMENT; // as booked
        assertTrue(plain.peak - fused.peak >= probs - lse, "fused books the lse instead of the probabilities: "
                + plain.peak + " vs " + fused.peak);
    }

    private static void close(float[] want, float[] got, String what) {
        float scale = 0;
        for (float x : want) scale = Math.max(scale, Math.abs(x));
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 2e-6f * Math.max(1, scale), what + " at " + i);
    }
}
