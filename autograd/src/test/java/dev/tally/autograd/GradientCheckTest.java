package dev.tally.autograd;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every differentiable function against central finite differences. The scalar objective is L = Σ w ∘ f(x) for a fixed
 * random w, evaluated through the real fp32 ops and accumulated in float64; differences use a step of 1e-2·max(1,|x|)
 * on inputs drawn from [-1, 1]. Measured agreement is 1e-6 to 5e-5 relative to the largest gradient (attention worst);
 * the bound is 1e-3, while an analytic gradient missing a term is off by order one.
 */
class GradientCheckTest {
    private final SplittableRandom rnd = new SplittableRandom(11);

    /** A function of some parameters, producing one output var from a graph. */
    private interface Fn extends Function<Graph, Var> {}

    private void check(String name, List<Parameter> params, Fn f) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena acts = new MemoryArena(ledger, "acts", MemoryCategory.ACTIVATIONS, Device.CPU, 32L << 20);
             MemoryArena loss = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 1L << 20);
             MemoryArena grads = new MemoryArena(ledger, "grads", MemoryCategory.GRADS, Device.CPU, 8L << 20)) {
            for (Parameter p : params) {
                Tensor g = grads.allocate("g." + p.name(), DType.F32, p.value().shape());
                g.ops().fill(g, 0);
                p.setGrad(g);
            }
            // objective weights, fixed per check
            Graph probe = new Graph(acts, loss, Parameter::grad, true);
            Var out0 = f.apply(probe);
            double[] w = new double[(int) out0.value().numel()];
            for (int i = 0; i < w.length; i++) w[i] = rnd.nextDouble(-1, 1);
            probe.close();

            Graph g = new Graph(acts, loss, Parameter::grad, true);
            Var out = f.apply(g);
            Tensor seed = acts.allocate("seed", DType.F32, out.value().shape()).copyFrom(w);
            Var l = Functions.externalLoss(g, List.of(out), new Functions.ExternalLoss() {
                @Override public void forward(Tensor t) { t.copyFrom(new double[] {dot(out.value().toDoubleArray(), w)}); }
                @Override public void backward(Tensor dLoss, Graph gr) {
                    Tensor go = Functions.gradOf(gr, out);
                    go.ops().binary(dev.tally.engine.BinaryOp.ADD, go, seed, go);
                }
                @Override public void discard() {}
            });
            g.backward(l, 1.0);
            g.close();
            acts.free(seed);
            for (Parameter p : params) {
                double[] analytic = p.grad().toDoubleArray();
                double[] x = p.value().toDoubleArray();
                double[] numeric = new double[x.length];
                for (int i = 0; i < x.length; i++) {
                    double h = 1e-2 * Math.max(1, Math.abs(x[i]));
                    double[] xp = x.clone(), xm = x.clone();
                    xp[i] += h;
                    xm[i] -= h;
                    numeric[i] = (objective(acts, loss, p, xp, f, w) - objective(acts, loss, p, xm, f, w)) / (2 * h);
                }
                p.value().copyFrom(x);
                double diff = 0, scale = 1e-3;
                for (int i = 0; i < x.length; i++) {
                    diff = Math.max(diff, Math.abs(analytic[i] - numeric[i]));
                    scale = Math.max(scale, Math.abs(numeric[i]));
                }
                assertTrue(diff / scale < 1e-3, name + " d/d" + p.name() + ": max |analytic - numeric| = " + diff + " vs scale " + scale);
            }
            for (Parameter p : params) p.setGrad(null);
        }
    }

    private static double objective(MemoryArena acts, MemoryArena loss, Parameter p, double[] x, Fn f, double[] w) {
        p.value().copyFrom(x);
        Graph g = new Graph(acts, loss, Parameter::grad, true);
        double v;
        try (AutoCloseable off = g.noGrad()) {
            v = dot(f.apply(g).value().toDoubleArray(), w);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        g.close();
        return v;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    private final List<MemoryArena> arenas = new ArrayList<>();

    private Parameter param(String name, int... shape) {
        MemoryArena a = new MemoryArena(new MemoryLedger(), name, MemoryCategory.WEIGHTS, Device.CPU, 1L << 20);
        arenas.add(a);
        Tensor t = a.allocate(name, DType.F32, shape);
        double[] v = new double[(int) t.numel()];
        for (int i = 0; i < v.length; i++) v[i] = rnd.nextDouble(-1, 1);
        t.copyFrom(v);
        return new Parameter(name, t);
    }

    @Test
    void linearAndAdd() {
        Parameter x = param("x", 5, 7), w = param("w", 3, 7), r = param("r", 5, 3);
        check("linear+add", List.of(x, w, r), g -> Functions.add(g, Functions.linear(g, g.param(x), g.param(w)), g.param(r)));
    }

    @Test
    void rmsNorm() {
        Parameter x = param("x", 4, 9), w = param("w", 9);
        check("rmsNorm", List.of(x, w), g -> Functions.rmsNorm(g, g.param(x), g.param(w), 1e-6));
    }

    @Test
    void swiglu() {
        Parameter a = param("gate", 3, 11), b = param("up", 3, 11);
        check("swiglu", List.of(a, b), g -> Functions.swiglu(g, g.param(a), g.param(b)));
    }

    @Test
    void rope() {
        Parameter x = param("x", 2 * 3, 2 * 4); // B=2, T=3, H=2, Dh=4
        check("rope", List.of(x), g -> Functions.rope(g, g.param(x), 2, 3, 2, 10000));
    }

    @Test
    void causalAttention() {
        Parameter q = param("q", 2 * 5, 2 * 4), k = param("k", 2 * 5, 2 * 4), v = param("v", 2 * 5, 2 * 4);
        check("attention", List.of(q, k, v), g -> Functions.causalAttention(g, g.param(q), g.param(k), g.param(v), 2, 5, 2));
    }

    @Test
    void embedding() {
        Parameter table = param("table", 7, 3);
        MemoryArena a = new MemoryArena(new MemoryLedger(), "ids", MemoryCategory.OTHER, Device.CPU, 4096);
        arenas.add(a);
        Tensor ids = a.allocate("ids", DType.I64, 5).copyFrom(new long[] {6, 0, 6, 3, 1});
        check("embedding", List.of(table), g -> Functions.embedding(g, g.param(table), g.input(ids)));
    }

    @Test
    void composedBlockReusesInputs() {
        // a var consumed twice (residual) must receive both gradient contributions
        Parameter x = param("x", 4, 6), w1 = param("w1", 6, 6), n = param("n", 6);
        check("block", List.of(x, w1, n), g -> {
            Var xv = g.param(x);
            Var h = Functions.rmsNorm(g, xv, g.param(n), 1e-6);
            return Functions.add(g, xv, Functions.linear(g, h, g.param(w1)));
        });
    }

    @org.junit.jupiter.api.AfterEach
    void closeArenas() {
        arenas.forEach(MemoryArena::close);
        arenas.clear();
    }
}
