package dev.tally.autograd;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Writing an activation gradient's first contribution in place (copy, product with beta = 0, the op writing into the
 * buffer, a sum handing its gradient buffer on) gives the same parameter gradients, bit for bit, as zero-filling every
 * gradient buffer and adding onto it, through a LLaMA-style block (RMSNorm, q/k/v/o projections, RoPE, causal attention
 * fused and materialized, residual sums, SwiGLU MLP); and it books fewer activation bytes.
 */
class FirstContributionTest {
    private static final int B = 2, T = 24, H = 2, DH = 8, D = H * DH, F = 40;

    private record Run(List<float[]> grads, long peak) {}

    private static Run run(boolean writeFirst, boolean fused) {
        MemoryLedger ledger = new MemoryLedger();
        SplittableRandom r = new SplittableRandom(11);
        try (MemoryArena acts = new MemoryArena(ledger, "acts", MemoryCategory.ACTIVATIONS, Device.CPU, 8L << 20);
             MemoryArena loss = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 1L << 16);
             MemoryArena params = new MemoryArena(ledger, "params", MemoryCategory.WEIGHTS, Device.CPU, 4L << 20)) {
            List<Parameter> ps = new ArrayList<>();
            Parameter x = param(params, ps, r, "x", B * T, D), n1 = param(params, ps, r, "n1", D), n2 = param(params, ps, r, "n2", D);
            Parameter wq = param(params, ps, r, "wq", D, D), wk = param(params, ps, r, "wk", D, D), wv = param(params, ps, r, "wv", D, D);
            Parameter wo = param(params, ps, r, "wo", D, D), wg = param(params, ps, r, "wg", F, D), wu = param(params, ps, r, "wu", F, D);
            Parameter wd = param(params, ps, r, "wd", D, F);
            double[] seed = new double[B * T * D];
            for (int i = 0; i < seed.length; i++) seed[i] = r.nextGaussian();
            Graph g = new Graph(acts, loss, Parameter::grad, true).fusedAttention(fused).writeFirstContributions(writeFirst);
            long before = acts.highWater();
            Var in = g.param(x);
            Var h1 = Functions.rmsNorm(g, in, g.param(n1), 1e-6);
            Var q = Functions.rope(g, Functions.linear(g, h1, g.param(wq)), B, T, H, 10000);
            Var k = Functions.rope(g, Functions.linear(g, h1, g.param(wk)), B, T, H, 10000);
            Var v = Functions.linear(g, h1, g.param(wv));
            Var h = Functions.add(g, in, Functions.linear(g, Functions.causalAttention(g, q, k, v, B, T, H), g.param(wo)));
            Var h2 = Functions.rmsNorm(g, h, g.param(n2), 1e-6);
            Var mlp = Functions.linear(g, Functions.swiglu(g, Functions.linear(g, h2, g.param(wg)), Functions.linear(g, h2, g.param(wu))), g.param(wd));
            Var out = Functions.add(g, h, mlp);
            Tensor s = acts.allocate("seed", DType.F32, out.value().shape()).copyFrom(seed);
            Var l = Functions.externalLoss(g, List.of(out), new Functions.ExternalLoss() {
                @Override public void forward(Tensor t) { t.copyFrom(new double[] {0}); }
                @Override public void backward(Tensor dLoss, Graph gr) {
                    Tensor go = Functions.gradOf(gr, out);
                    go.ops().binary(dev.tally.engine.BinaryOp.ADD, go, s, go);
                }
                @Override public void discard() {}
            });
            g.backward(l, 1.0);
            g.close();
            acts.free(s);
            List<float[]> grads = new ArrayList<>();
            for (Parameter p : ps) grads.add(p.grad().toFloatArray());
            return new Run(grads, acts.highWater() - before);
        }
    }

    private static Parameter param(MemoryArena arena, List<Parameter> ps, SplittableRandom r, String name, int... shape) {
        Tensor t = arena.allocate(name, DType.F32, shape);
        double[] v = new double[(int) t.numel()];
        for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * 0.3;
        t.copyFrom(v);
        Parameter p = new Parameter(name, t);
        Tensor g = arena.allocate("grad." + name, DType.F32, shape);
        g.ops().fill(g, 0);
        p.setGrad(g);
        ps.add(p);
        return p;
    }

    @ParameterizedTest(name = "fused attention {0}")
    @ValueSource(booleans = {true, false})
    void writingFirstContributionsGivesTheSameBitsWithFewerBytes(boolean fused) {
        Run written = run(true, fused), added = run(false, fused);
        for (int i = 0; i < written.grads.size(); i++) assertArrayEquals(added.grads.get(i), written.grads.get(i), "gradient " + i);
        boolean nonZero = false;
        for (float f : written.grads.getFirst()) nonZero |= f != 0;
        assertTrue(nonZero, "the input's gradient is not all zero");
        assertTrue(written.peak <= added.peak, "bytes: written " + written.peak + " vs added " + added.peak);
        System.out.printf("fused %b: activation high water written %d B, zero-fill + add %d B%n", fused, written.peak, added.peak);
    }
}
