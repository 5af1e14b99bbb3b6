package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Fixtures;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.tally.engine.testing.Reference.assertClose;
import static dev.tally.engine.testing.Reference.round;

/** softmax family, RMSNorm (forward and backward) and RoPE against double references. */
class NnOpsTest {
    private static final Shape[] ROW_SHAPES = {Shape.of(1), Shape.of(7), Shape.of(3, 5), Shape.of(2, 4, 6), Shape.of(5, 3), Shape.of(1, 1), Shape.of(3, 19)};

    /** Row-wise reference over the last dim; causal masks [i, j] for j > i + (C − R). */
    private static double[] softmaxRef(double[] x, Shape s, boolean causal, boolean log) {
        int c = s.dim(-1), rows = x.length / Math.max(1, c);
        int rr = causal ? s.dim(-2) : 1;
        double[] out = new double[x.length];
        for (int row = 0; row < rows; row++) {
            int i = row % rr;
            int keep = causal ? Math.max(0, Math.min(c, i + (c - rr) + 1)) : c;
            double m = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < keep; j++) m = Math.max(m, x[row * c + j]);
            for (int j = 0; j < keep; j++) sum += Math.exp(x[row * c + j] - m);
            for (int j = 0; j < c; j++) {
                out[row * c + j] = log ? x[row * c + j] - m - Math.log(sum) : j < keep ? Math.exp(x[row * c + j] - m) / sum : 0;
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void softmaxFamily(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(31);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : ROW_SHAPES) {
                int n = Cases.numel(shape);
                double[] x = round(dt, r.normal(n, 3));
                Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                Tensor out = Views.empty(arena, "out", dt, shape, layout);
                for (boolean causal : new boolean[]{false, true}) {
                    if (causal && shape.rank() < 2) continue;
                    ops.softmax(tx, out, causal);
                    assertClose(round(dt, softmaxRef(x, shape, causal, false)), Views.read(out), Cases.rtol(dt), 1e-6,
                            "softmax causal=" + causal + " " + dt + shape + " " + layout);
                }
                ops.logSoftmax(tx, out);
                assertClose(round(dt, softmaxRef(x, shape, false, true)), Views.read(out), Cases.rtol(dt), 1e-5,
                        "logSoftmax " + dt + shape + " " + layout);
                // backward: dx = y ∘ (dy − Σ dy ∘ y)
                double[] y = round(dt, softmaxRef(x, shape, false, false));
                double[] dy = round(dt, r.normal(n));
                Tensor ty = Views.of(arena, "y", dt, shape, y, layout);
                Tensor tdy = Views.of(arena, "dy", dt, shape, dy, Layout.CONTIGUOUS);
                ops.softmaxBackward(ty, tdy, out);
                int c = shape.dim(-1);
                double[] expect = new double[n];
                for (int row = 0; row < n / c; row++) {
                    double dot = 0;
                    for (int j = 0; j < c; j++) dot += y[row * c + j] * dy[row * c + j];
                    for (int j = 0; j < c; j++) expect[row * c + j] = round(dt, y[row * c + j] * (dy[row * c + j] - dot));
                }
                assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-6, "softmaxBackward " + dt + shape + " " + layout);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void softmaxIsStableForHugeLogits(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor x = arena.allocate("x", DType.F32, 3).copyFrom(new float[]{1e30f, 1e30f, -1e30f});
            Tensor y = arena.allocate("y", DType.F32, 3);
            ops.softmax(x, y, false);
            assertClose(new double[]{0.5, 0.5, 0}, y.toDoubleArray(), 1e-6, 0, "softmax of huge logits");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void largeInputsSplitAcrossThreadsGiveTheSameRows(Device device) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(34);
        Ops ops = Backends.of(device).ops();
        Shape shape = Shape.of(2, 150, 501); // > 128K elements: the CPU splits rows over its workers
        int n = Cases.numel(shape), d = shape.dim(-1);
        try (MemoryArena arena = TestArenas.open(device)) {
            double[] x = round(DType.F32, r.normal(n, 3));
            Tensor tx = Views.of(arena, "x", DType.F32, shape, x);
            Tensor out = arena.allocate("out", DType.F32, shape);
            for (boolean causal : new boolean[]{false, true}) {
                ops.softmax(tx, out, causal);
                assertClose(softmaxRef(x, shape, causal, false), out.toDoubleArray(), 1e-5, 1e-7, "large softmax causal=" + causal);
            }
            ops.logSoftmax(tx, out);
            assertClose(softmaxRef(x, shape, false, true), out.toDoubleArray(), 1e-5, 1e-5, "large logSoftmax");
            Tensor w = arena.allocate("w", DType.F32, d);
            ops.fill(w, 2);
            Tensor rstd = arena.allocate("rstd", DType.F32, 2, 150);
            ops.rmsNorm(tx, w, 1e-6, out, rstd);
            double[] expect = new double[n];
            for (int row = 0; row < n / d; row++) {
                double ss = 0;
                for (int j = 0; j < d; j++) ss += x[row * d + j] * x[row * d + j];
                double rs = 1 / Math.sqrt(ss / d + 1e-6);
                for (int j = 0; j < d; j++) expect[row * d + j] = x[row * d + j] * rs * 2;
            }
            assertClose(expect, out.toDoubleArray(), 1e-5, 1e-6, "large rmsNorm");
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void rmsNormForwardAndBackward(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(32);
        Ops ops = Backends.of(device).ops();
        double eps = 1e-5;
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : Cases.SHAPES) {
                int n = Cases.numel(shape), d = shape.dim(-1), rows = n / d;
                double[] x = round(dt, r.normal(n, 2));
                double[] w = round(dt, r.uniform(d, 0.5, 1.5));
                double[] dy = round(dt, r.normal(n));
                Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                Tensor tw = Views.of(arena, "w", dt, Shape.of(d), w, layout);
                Tensor out = Views.empty(arena, "out", dt, shape, layout);
                int[] rd = java.util.Arrays.copyOf(shape.dims(), shape.rank() - 1);
                Tensor rstd = arena.allocate("rstd", DType.F32, Shape.of(rd));
                ops.rmsNorm(tx, tw, eps, out, rstd);
                double[] er = new double[rows], eo = new double[n], edx = new double[n], edw = new double[d];
                for (int row = 0; row < rows; row++) {
                    double ss = 0;
                    for (int j = 0; j < d; j++) ss += x[row * d + j] * x[row * d + j];
                    double rs = 1 / Math.sqrt(ss / d + eps);
                    er[row] = rs;
                    double dot = 0;
                    for (int j = 0; j < d; j++) {
                        eo[row * d + j] = round(dt, x[row * d + j] * rs * w[j]);
                        dot += dy[row * d + j] * w[j] * x[row * d + j];
                        edw[j] += dy[row * d + j] * x[row * d + j] * rs;
                    }
                    for (int j = 0; j < d; j++) {
                        edx[row * d + j] = round(dt, rs * w[j] * dy[row * d + j] - x[row * d + j] * rs * rs * rs / d * dot);
                    }
                }
                assertClose(eo, Views.read(out), Cases.rtol(dt), 1e-6, "rmsNorm " + dt + shape + " " + layout);
                assertClose(er, rstd.toDoubleArray(), 1e-6, 0, "rmsNorm rstd " + dt + shape + " " + layout);
                ops.rmsNorm(tx, tw, eps, out, null); // rstd is optional
                assertClose(eo, Views.read(out), Cases.rtol(dt), 1e-6, "rmsNorm without rstd " + dt + shape);
                Tensor tdy = Views.of(arena, "dy", dt, shape, dy, Layout.CONTIGUOUS);
                Tensor dx = Views.empty(arena, "dx", dt, shape, layout);
                Tensor dw = Views.empty(arena, "dw", DType.F32, Shape.of(d), layout);
                ops.rmsNormBackward(tx, tw, rstd, tdy, dx, dw);
                assertClose(edx, Views.read(dx), Cases.rtol(dt) * 2, 1e-5, "rmsNormBackward dx " + dt + shape + " " + layout);
                assertClose(edw, Views.read(dw), 1e-5, 1e-5, "rmsNormBackward dweight " + dt + shape + " " + layout);
                ops.rmsNormBackward(tx, tw, rstd, tdy, dx, null);
                assertClose(edx, Views.read(dx), Cases.rtol(dt) * 2, 1e-5, "rmsNormBackward without dweight " + dt + shape);
            }
        }
    }

    /** Row-wise x / rms(x) · w in double. */
    private static double[] rmsNormRef(double[] x, double[] w, int rows, int n, double eps) {
        double[] y = new double[rows * n];
        for (int row = 0; row < rows; row++) {
            double ss = 0;
            for (int j = 0; j < n; j++) ss += x[row * n + j] * x[row * n + j];
            double inv = 1 / Math.sqrt(ss / n + eps);
            for (int j = 0; j < n; j++) y[row * n + j] = x[row * n + j] * inv * w[j];
        }
        return y;
    }

    /** Σ rmsNorm(x, w) ∘ dy: its gradient is what rmsNormBackward returns for upstream gradient dy. */
    private static double dotLoss(double[] x, double[] w, double[] dy, int rows, int n, double eps) {
        double[] y = rmsNormRef(x, w, rows, n, eps);
        double s = 0;
        for (int i = 0; i < y.length; i++) s += y[i] * dy[i];
        return s;
    }

    /** The backward against central differences of the forward, independent of the analytic formula used above. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void rmsNormBackwardMatchesFiniteDifferences(Device device) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(35);
        Ops ops = Backends.of(device).ops();
        int rows = 3, n = 13;
        double eps = 1e-6, h = 1e-6;
        try (MemoryArena arena = TestArenas.open(device)) {
            double[] x = round(DType.F32, r.uniform(rows * n, -1, 1)), w = round(DType.F32, r.uniform(n, -1, 1));
            double[] dy = round(DType.F32, r.uniform(rows * n, -1, 1));
            Tensor tx = Views.of(arena, "x", DType.F32, Shape.of(rows, n), x), tw = Views.of(arena, "w", DType.F32, Shape.of(n), w);
            Tensor out = arena.allocate("out", DType.F32, rows, n), rstd = arena.allocate("rstd", DType.F32, rows);
            ops.rmsNorm(tx, tw, eps, out, rstd);
            Fixtures.assertClose(out.toDoubleArray(), rmsNormRef(x, w, rows, n, eps), 1e-5, "rmsNorm");
            Tensor tdy = Views.of(arena, "dy", DType.F32, Shape.of(rows, n), dy);
            Tensor dx = arena.allocate("dx", DType.F32, rows, n), dw = arena.allocate("dw", DType.F32, n);
            ops.rmsNormBackward(tx, tw, rstd, tdy, dx, dw);
            double[] gx = new double[rows * n], gw = new double[n];
            for (int i = 0; i < rows * n; i++) {
                double[] p = x.clone(), q = x.clone();
                p[i] += h;
                q[i] -= h;
                gx[i] = (dotLoss(p, w, dy, rows, n, eps) - dotLoss(q, w, dy, rows, n, eps)) / (2 * h);
            }
            for (int j = 0; j < n; j++) {
                double[] p = w.clone(), q = w.clone();
                p[j] += h;
                q[j] -= h;
                gw[j] = (dotLoss(x, p, dy, rows, n, eps) - dotLoss(x, q, dy, rows, n, eps)) / (2 * h);
            }
            Fixtures.assertClose(dx.toDoubleArray(), gx, 1e-5, "rmsNorm dx by finite differences");
            Fixtures.assertClose(dw.toDoubleArray(), gw, 1e-5, "rmsNorm dweight by finite differences");
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void ropeRotatesHalvesAndInverts(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(33);
        Ops ops = Backends.of(device).ops();
        Shape[] shapes = {Shape.of(1, 1, 2), Shape.of(5, 3, 8), Shape.of(2, 7, 2, 6)};
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : shapes) {
                int n = Cases.numel(shape), dh = shape.dim(-1), h = shape.dim(-2), t = shape.dim(-3), half = dh / 2;
                double[] x = round(dt, r.normal(n));
                Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                Tensor out = Views.empty(arena, "out", dt, shape, layout);
                int offset = 3;
                double base = 10000;
                for (boolean inverse : new boolean[]{false, true}) {
                    ops.rope(tx, out, offset, base, inverse);
                    double[] expect = new double[n];
                    for (int row = 0; row < n / dh; row++) {
                        int pos = (row / h) % t + offset;
                        for (int i = 0; i < half; i++) {
                            double ang = pos * Math.pow(base, -2.0 * i / dh) * (inverse ? -1 : 1);
                            double x1 = x[row * dh + i], x2 = x[row * dh + i + half];
                            expect[row * dh + i] = round(dt, x1 * Math.cos(ang) - x2 * Math.sin(ang));
                            expect[row * dh + i + half] = round(dt, x2 * Math.cos(ang) + x1 * Math.sin(ang));
                        }
                    }
                    assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-5, "rope inverse=" + inverse + " " + dt + shape + " " + layout);
                }
                // forward then inverse is the identity (up to storage rounding)
                ops.rope(tx, out, offset, base, false);
                Tensor back = Views.empty(arena, "back", dt, shape, layout);
                ops.rope(out, back, offset, base, true);
                // the intermediate is rounded to dt relative to the pair's magnitude, so the error bound is absolute
                assertClose(x, Views.read(back), Cases.rtol(dt) * 2, Cases.rtol(dt) * 4, "rope round trip " + dt + shape);
            }
        }
    }
}
