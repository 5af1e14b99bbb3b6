package dev.tally.engine;

import dev.tally.engine.testing.Fixtures;
import dev.tally.engine.testing.Ref;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static dev.tally.engine.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every primitive against a plain float64 reference, on every device, on contiguous and strided views. */
class OpsTest {
    static List<Device> devices() { return TestDevices.all().toList(); }

    private static Fixtures fx(Device d) {
        TestDevices.assumeUsable(d);
        return new Fixtures(d);
    }

    private static final int[][] MATMUL_SHAPES = {{1, 1, 1}, {7, 13, 5}, {64, 31, 17}, {33, 65, 129}, {3, 200, 2}};

    @ParameterizedTest @MethodSource("devices")
    void matmulAllLayouts(Device d) {
        try (Fixtures f = fx(d)) {
            for (int[] s : MATMUL_SHAPES) {
                int m = s[0], k = s[1], n = s[2];
                for (int layout = 0; layout < 4; layout++) {
                    boolean ta = (layout & 1) != 0, tb = (layout & 2) != 0;
                    Tensor a = ta ? f.random(DType.F32, k, m).t() : f.random(DType.F32, m, k);
                    Tensor b = tb ? f.random(DType.F32, n, k).t() : f.random(DType.F32, k, n);
                    Tensor out = f.zeros(DType.F32, m, n);
                    out.ops().matmul(a, b, out, 1, 0);
                    double[] ref = Ref.matmul(a.toDoubleArray(), b.toDoubleArray(), m, k, n);
                    assertClose(out.toDoubleArray(), ref, 1e-5, "matmul " + m + "x" + k + "x" + n + " layout " + layout);
                }
            }
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void matmulAlphaBetaAndNanIgnoredWhenBetaZero(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor a = f.random(DType.F32, 5, 7), b = f.random(DType.F32, 7, 3);
            Tensor out = f.zeros(DType.F32, 5, 3);
            out.ops().fill(out, Double.NaN);
            out.ops().matmul(a, b, out, 1, 0);
            double[] ref = Ref.matmul(a.toDoubleArray(), b.toDoubleArray(), 5, 7, 3);
            assertClose(out.toDoubleArray(), ref, 1e-5, "beta=0 over NaN");
            double[] old = out.toDoubleArray();
            out.ops().matmul(a, b, out, 0.5, 2.0);
            double[] expect = new double[old.length];
            for (int i = 0; i < old.length; i++) expect[i] = 0.5 * ref[i] + 2 * old[i];
            assertClose(out.toDoubleArray(), expect, 1e-5, "alpha/beta");
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void batchedMatmulBroadcastsBatchDims(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor a = f.random(DType.F32, 2, 3, 4, 5);   // batch [2,3]
            Tensor b = f.random(DType.F32, 5, 6);         // shared
            Tensor out = f.zeros(DType.F32, 2, 3, 4, 6);
            out.ops().matmul(a, b, out, 1, 0);
            double[] av = a.toDoubleArray(), bv = b.toDoubleArray(), ov = out.toDoubleArray();
            for (int t = 0; t < 6; t++) {
                double[] ai = java.util.Arrays.copyOfRange(av, t * 20, t * 20 + 20);
                double[] ref = Ref.matmul(ai, bv, 4, 5, 6);
                assertClose(java.util.Arrays.copyOfRange(ov, t * 24, t * 24 + 24), ref, 1e-5, "batch " + t);
            }
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void bf16MatmulAccumulatesInFp32(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor a = f.random(DType.BF16, 16, 300), b = f.random(DType.BF16, 300, 8);
            Tensor out = f.zeros(DType.F32, 16, 8);
            out.ops().matmul(a, b, out, 1, 0);
            double[] ref = Ref.matmul(a.toDoubleArray(), b.toDoubleArray(), 16, 300, 8);
            assertClose(out.toDoubleArray(), ref, 1e-5, "bf16 inputs, fp32 output");
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void unaryOpsAndDerivatives(Device d) {
        try (Fixtures f = fx(d)) {
            for (UnaryOp op : UnaryOp.values()) {
                boolean positive = op == UnaryOp.LOG || op == UnaryOp.SQRT || op == UnaryOp.RSQRT || op == UnaryOp.RECIPROCAL;
                Tensor x = f.zeros(DType.F32, 11, 7);
                double[] xv = f.doubles(77, positive ? 0.2 : -3, 3);
                x.copyFrom(xv);
                Tensor xt = x.t(); // strided input
                Tensor out = f.zeros(DType.F32, 7, 11);
                x.ops().unary(op, xt, out);
                double[] xtv = xt.toDoubleArray();
                double[] expect = new double[xtv.length];
                for (int i = 0; i < expect.length; i++) expect[i] = (float) reference(op, (float) xtv[i]);
                assertClose(out.toDoubleArray(), expect, 2e-6, "unary " + op);
                if (op == UnaryOp.SIGN || op == UnaryOp.ISFINITE) continue;
                Tensor dy = f.random(DType.F32, 7, 11), dx = f.zeros(DType.F32, 7, 11);
                x.ops().unaryBackward(op, xt, dy, dx);
                double[] dyv = dy.toDoubleArray(), grad = new double[xtv.length];
                for (int i = 0; i < grad.length; i++) {
                    double h = 1e-6 * Math.max(1, Math.abs(xtv[i]));
                    grad[i] = dyv[i] * (reference(op, xtv[i] + h) - reference(op, xtv[i] - h)) / (2 * h);
                }
                assertClose(dx.toDoubleArray(), grad, 1e-5, "unaryBackward " + op);
            }
        }
    }

    private static double reference(UnaryOp op, double x) {
        return switch (op) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1 / Math.sqrt(x);
            case SQUARE -> x * x;
            case RECIPROCAL -> 1 / x;
            case SIN -> Math.sin(x);
            case COS -> Math.cos(x);
            case TANH -> Math.tanh(x);
            case SIGMOID -> 1 / (1 + Math.exp(-x));
            case SILU -> x / (1 + Math.exp(-x));
            case RELU -> Math.max(0, x);
            case SIGN -> Math.signum(x);
            case ISFINITE -> 1;
        };
    }

    @ParameterizedTest @MethodSource("devices")
    void binaryOpsBroadcast(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor a = f.random(DType.F32, 3, 1, 5);
            Tensor b = f.random(DType.F32, 4, 1);
            double[] av = a.toDoubleArray(), bv = b.toDoubleArray();
            for (BinaryOp op : BinaryOp.values()) {
                Tensor out = f.zeros(DType.F32, 3, 4, 5);
                a.ops().binary(op, a, b, out);
                double[] expect = new double[60];
                for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++) {
                    double x = av[i * 5 + k], y = bv[j];
                    double r = switch (op) {
                        case ADD -> x + y; case SUB -> x - y; case MUL -> x * y; case DIV -> x / y;
                        case MAX -> Math.max(x, y); case MIN -> Math.min(x, y);
                        case POW -> Math.pow(Math.abs(x), y);
                        case LOGADDEXP -> Math.log(Math.exp(x) + Math.exp(y));
                        case EQ -> x == y ? 1 : 0; case NE -> x != y ? 1 : 0; case LT -> x < y ? 1 : 0;
                        case LE -> x <= y ? 1 : 0; case GT -> x > y ? 1 : 0; case GE -> x >= y ? 1 : 0;
                    };
                    expect[(i * 4 + j) * 5 + k] = (float) r;
                }
                if (op == BinaryOp.POW) { // exercise POW on a positive base
                    Tensor pa = f.zeros(DType.F32, 3, 1, 5);
                    a.ops().unary(UnaryOp.ABS, a, pa);
                    a.ops().binary(op, pa, b, out);
                }
                assertClose(out.toDoubleArray(), expect, 1e-6, "binary " + op);
            }
            Tensor out = f.zeros(DType.F32, 3, 1, 5);
            a.ops().binaryScalar(BinaryOp.MUL, a, 2.5, out);
            double[] e = new double[15];
            for (int i = 0; i < 15; i++) e[i] = (float) (av[i] * 2.5);
            assertClose(out.toDoubleArray(), e, 1e-7, "binaryScalar");
            Tensor o2 = f.zeros(DType.F32, 3, 4, 5);
            a.ops().axpby(2, a, -3, b, o2);
            double[] e2 = new double[60];
            for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 5; k++) e2[(i * 4 + j) * 5 + k] = 2 * av[i * 5 + k] - 3 * bv[j];
            assertClose(o2.toDoubleArray(), e2, 1e-6, "axpby");
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void whereSelectsWithoutLettingNonFiniteValuesThrough(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor g = f.zeros(DType.F32, 2, 3);
            g.copyFrom(new double[] {1, Double.NaN, 3, Double.POSITIVE_INFINITY, 5, 6});
            Tensor mask = f.zeros(DType.F32, 2, 3), zero = f.zeros(DType.F32, 1), out = f.zeros(DType.F32, 2, 3);
            g.ops().unary(UnaryOp.ISFINITE, g, mask);
            g.ops().where(mask, g, zero, out);
            assertClose(out.toDoubleArray(), new double[] {1, 0, 3, 0, 5, 6}, 0, "where");
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void reductionsAlongEveryDim(Device d) {
        try (Fixtures f = fx(d)) {
            int[] shape = {3, 5, 7};
            Tensor x = f.random(DType.F32, shape);
            double[] xv = x.toDoubleArray();
            for (ReduceOp op : ReduceOp.values()) {
                for (int dim = 0; dim < 3; dim++) {
                    int[] os = shape.clone();
                    os[dim] = 1;
                    Tensor out = f.zeros(DType.F32, os);
                    x.ops().reduce(op, x, dim, out);
                    double[] expect = new double[(int) out.numel()];
                    for (int i = 0; i < expect.length; i++) {
                        int[] idx = {i / (os[1] * os[2]), (i / os[2]) % os[1], i % os[2]};
                        double[] vals = new double[shape[dim]];
                        for (int j = 0; j < shape[dim]; j++) {
                            idx[dim] = j;
                            vals[j] = xv[(idx[0] * 5 + idx[1]) * 7 + idx[2]];
                        }
                        expect[i] = reduceRef(op, vals);
                    }
                    assertClose(out.toDoubleArray(), expect, 2e-6, "reduce " + op + " dim " + dim);
                }
                Tensor all = f.zeros(DType.F32, 1);
                x.ops().reduceAll(op, x.transpose(0, 2), all);
                assertClose(all.toDoubleArray(), new double[] {reduceRef(op, xv)}, 2e-6, "reduceAll " + op);
            }
        }
    }

    private static double reduceRef(ReduceOp op, double[] v) {
        double s = 0, m = Double.NEGATIVE_INFINITY, mn = Double.POSITIVE_INFINITY, ss = 0, ma = 0;
        for (double x : v) { s += x; m = Math.max(m, x); mn = Math.min(mn, x); ss += x * x; ma = Math.max(ma, Math.abs(x)); }
        double lse = 0;
        for (double x : v) lse += Math.exp(x - m);
        return switch (op) {
            case SUM -> s; case MEAN -> s / v.length; case MAX -> m; case MIN -> mn; case SUM_SQUARES -> ss;
            case NORM2 -> Math.sqrt(ss); case MAX_ABS -> ma; case LOGSUMEXP -> m + Math.log(lse);
        };
    }

    @ParameterizedTest @MethodSource("devices")
    void softmaxCausalLogSoftmaxAndBackward(Device d) {
        try (Fixtures f = fx(d)) {
            int r = 4, c = 6; // C > R: the mask is aligned to the end (j > i + C - R)
            Tensor x = f.random(DType.F32, 2, r, c);
            Tensor y = f.zeros(DType.F32, 2, r, c), ly = f.zeros(DType.F32, 2, r, c);
            x.ops().softmax(x, y, true);
            x.ops().logSoftmax(x, ly);
            double[] xv = x.toDoubleArray(), yv = y.toDoubleArray(), lv = ly.toDoubleArray();
            for (int row = 0; row < 2 * r; row++) {
                int i = row % r;
                double m = Double.NEGATIVE_INFINITY, s = 0, sAll = 0, mAll = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < c; j++) { mAll = Math.max(mAll, xv[row * c + j]); if (j <= i + c - r) m = Math.max(m, xv[row * c + j]); }
                for (int j = 0; j < c; j++) { sAll += Math.exp(xv[row * c + j] - mAll); if (j <= i + c - r) s += Math.exp(xv[row * c + j] - m); }
                for (int j = 0; j < c; j++) {
                    double p = j <= i + c - r ? Math.exp(xv[row * c + j] - m) / s : 0;
                    assertEquals(p, yv[row * c + j], 1e-6, "causal softmax");
                    assertEquals(xv[row * c + j] - mAll - Math.log(sAll), lv[row * c + j], 1e-6, "logSoftmax");
                }
            }
            Tensor dy = f.random(DType.F32, 2, r, c), dx = f.zeros(DType.F32, 2, r, c);
            x.ops().softmaxBackward(y, dy, dx);
            double[] dyv = dy.toDoubleArray(), dxv = dx.toDoubleArray();
            for (int row = 0; row < 2 * r; row++) {
                double dot = 0;
                for (int j = 0; j < c; j++) dot += yv[row * c + j] * dyv[row * c + j];
                for (int j = 0; j < c; j++) assertEquals(yv[row * c + j] * (dyv[row * c + j] - dot), dxv[row * c + j], 1e-6);
            }
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void rmsNormForwardAndBackwardMatchFiniteDifferences(Device d) {
        try (Fixtures f = fx(d)) {
            int rows = 3, n = 13;
            double eps = 1e-6;
            Tensor x = f.random(DType.F32, rows, n), w = f.random(DType.F32, n);
            Tensor out = f.zeros(DType.F32, rows, n), rstd = f.zeros(DType.F32, rows);
            x.ops().rmsNorm(x, w, eps, out, rstd);
            double[] xv = x.toDoubleArray(), wv = w.toDoubleArray(), ov = out.toDoubleArray();
            double[] expect = new double[rows * n];
            for (int r = 0; r < rows; r++) expect(xv, wv, r, n, eps, expect);
            assertClose(ov, expect, 1e-5, "rmsNorm");
            Tensor dy = f.random(DType.F32, rows, n), dx = f.zeros(DType.F32, rows, n), dw = f.zeros(DType.F32, n);
            x.ops().rmsNormBackward(x, w, rstd, dy, dx, dw);
            double[] dyv = dy.toDoubleArray();
            double[] gx = new double[rows * n], gw = new double[n];
            double h = 1e-6;
            for (int i = 0; i < rows * n; i++) {
                double[] p = xv.clone(), q = xv.clone();
                p[i] += h; q[i] -= h;
                gx[i] = (dotLoss(p, wv, dyv, rows, n, eps) - dotLoss(q, wv, dyv, rows, n, eps)) / (2 * h);
            }
            for (int j = 0; j < n; j++) {
                double[] p = wv.clone(), q = wv.clone();
                p[j] += h; q[j] -= h;
                gw[j] = (dotLoss(xv, p, dyv, rows, n, eps) - dotLoss(xv, q, dyv, rows, n, eps)) / (2 * h);
            }
            assertClose(dx.toDoubleArray(), gx, 1e-5, "rmsNorm dx");
            assertClose(dw.toDoubleArray(), gw, 1e-5, "rmsNorm dweight");
        }
    }

    private static void expect(double[] x, double[] w, int r, int n, double eps, double[] out) {
        double ss = 0;
        for (int j = 0; j < n; j++) ss += x[r * n + j] * x[r * n + j];
        double inv = 1 / Math.sqrt(ss / n + eps);
        for (int j = 0; j < n; j++) out[r * n + j] = x[r * n + j] * inv * w[j];
    }

    private static double dotLoss(double[] x, double[] w, double[] dy, int rows, int n, double eps) {
        double[] y = new double[rows * n];
        for (int r = 0; r < rows; r++) expect(x, w, r, n, eps, y);
        double s = 0;
        for (int i = 0; i < y.length; i++) s += y[i] * dy[i];
        return s;
    }

    @ParameterizedTest @MethodSource("devices")
    void ropeRotatesHalvesAndInverseUndoesIt(Device d) {
        try (Fixtures f = fx(d)) {
            int b = 2, t = 5, h = 3, dh = 8;
            Tensor x = f.random(DType.F32, b, t, h, dh), y = f.zeros(DType.F32, b, t, h, dh), back = f.zeros(DType.F32, b, t, h, dh);
            x.ops().rope(x, y, 2, 10000, false);
            x.ops().rope(y, back, 2, 10000, true);
            double[] xv = x.toDoubleArray(), yv = y.toDoubleArray();
            for (int bi = 0; bi < b; bi++) for (int ti = 0; ti < t; ti++) for (int hi = 0; hi < h; hi++) for (int i = 0; i < dh / 2; i++) {
                int base = ((bi * t + ti) * h + hi) * dh;
                double ang = (ti + 2) * Math.pow(10000, -2.0 * i / dh);
                double x1 = xv[base + i], x2 = xv[base + i + dh / 2];
                assertEquals(x1 * Math.cos(ang) - x2 * Math.sin(ang), yv[base + i], 1e-5);
                assertEquals(x2 * Math.cos(ang) + x1 * Math.sin(ang), yv[base + i + dh / 2], 1e-5);
            }
            assertClose(back.toDoubleArray(), xv, 1e-5, "inverse rope");
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void embeddingGatherScatter(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor table = f.random(DType.F32, 6, 4);
            Tensor ids = f.zeros(DType.I64, 2, 3);
            ids.copyFrom(new long[] {5, 0, -100, 5, 2, 1});
            Tensor out = f.zeros(DType.F32, 2, 3, 4);
            table.ops().embedding(table, ids, out);
            double[] tv = table.toDoubleArray(), ov = out.toDoubleArray();
            long[] idv = {5, 0, -100, 5, 2, 1};
            for (int n = 0; n < 6; n++) for (int j = 0; j < 4; j++) {
                assertEquals(idv[n] < 0 ? 0 : tv[(int) idv[n] * 4 + j], ov[n * 4 + j], 0.0);
            }
            Tensor grad = f.zeros(DType.F32, 6, 4);
            table.ops().scatterAddRows(ids, out, grad);
            double[] gv = grad.toDoubleArray();
            for (int j = 0; j < 4; j++) assertEquals(2 * tv[5 * 4 + j], gv[5 * 4 + j], 1e-6, "repeated id adds up");
            for (int j = 0; j < 4; j++) assertEquals(0.0, gv[3 * 4 + j], 0.0);
            Tensor bad = f.zeros(DType.I32, 1);
            bad.copyFrom(new long[] {6});
            Tensor o1 = f.zeros(DType.F32, 1, 4);
            assertThrows(IndexOutOfBoundsException.class, () -> table.ops().embedding(table, bad, o1));

            Tensor x = f.random(DType.F32, 3, 5), cid = f.zeros(DType.I32, 3), col = f.zeros(DType.F32, 3);
            cid.copyFrom(new long[] {4, -100, 5});
            x.ops().gatherColumns(x, cid, col);
            double[] xv = x.toDoubleArray();
            assertClose(col.toDoubleArray(), new double[] {xv[4], 0, 0}, 0, "gatherColumns");
            Tensor src = f.zeros(DType.F32, 3);
            src.copyFrom(new double[] {1, 2, 3});
            x.ops().scatterAddColumns(cid, src, x);
            double[] xv2 = x.toDoubleArray();
            xv[4] += 1;
            assertClose(xv2, xv, 1e-7, "scatterAddColumns skips out-of-range ids");
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void castsAndStridedCopies(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor x = f.random(DType.F32, 4, 6);
            Tensor bt = f.zeros(DType.BF16, 6, 4);
            x.ops().copy(x.t(), bt);
            double[] xt = x.t().toDoubleArray(), bv = bt.toDoubleArray();
            for (int i = 0; i < xt.length; i++) assertEquals(DType.bf16ToF32(DType.f32ToBf16((float) xt[i])), bv[i], 0.0);
            Tensor row = f.random(DType.F32, 1, 6), expanded = f.zeros(DType.F32, 4, 6);
            x.ops().copy(row, expanded);
            double[] rv = row.toDoubleArray(), ev = expanded.toDoubleArray();
            for (int i = 0; i < 24; i++) assertEquals(rv[i % 6], ev[i], 0.0);
            Tensor slice = x.slice(1, 2, 5);
            assertEquals(List.of(4, 3), java.util.Arrays.stream(slice.dims()).boxed().toList());
            double[] sv = slice.toDoubleArray(), all = x.toDoubleArray();
            for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) assertEquals(all[i * 6 + j + 2], sv[i * 3 + j], 0.0);
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void philoxStreamIsSeededCounterBasedAndWellDistributed(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor a = f.zeros(DType.F32, 20000), b = f.zeros(DType.F32, 20000), tail = f.zeros(DType.F32, 100);
            a.ops().random(a, Distribution.NORMAL, 7, 0, 0, 1);
            a.ops().random(b, Distribution.NORMAL, 7, 0, 0, 1);
            a.ops().random(tail, Distribution.NORMAL, 7, 1000, 0, 1); // counter offset 1000 = element 4000
            double[] av = a.toDoubleArray();
            assertClose(b.toDoubleArray(), av, 0, "same seed, same stream");
            assertClose(tail.toDoubleArray(), java.util.Arrays.copyOfRange(av, 4000, 4100), 0, "offset addresses the stream");
            double mean = 0, var = 0;
            for (double v : av) mean += v;
            mean /= av.length;
            for (double v : av) var += (v - mean) * (v - mean);
            var /= av.length;
            assertEquals(0, mean, 0.03);
            assertEquals(1, var, 0.05);
            Tensor u = f.zeros(DType.F32, 10000);
            u.ops().random(u, Distribution.UNIFORM, 3, 0, -2, 2);
            double um = 0;
            for (double v : u.toDoubleArray()) {
                assertTrue(v >= -2 && v < 2);
                um += v;
            }
            assertEquals(0, um / 10000, 0.05);
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void thinSvdReconstructsTallWideAndRankDeficient(Device d) {
        try (Fixtures f = fx(d)) {
            for (int[] s : new int[][] {{9, 4}, {4, 9}, {7, 7}, {1, 5}}) {
                int m = s[0], n = s[1], k = Math.min(m, n);
                Tensor a = f.random(DType.F32, m, n);
                checkSvd(f, a, m, n, k);
            }
            Tensor low = f.zeros(DType.F32, 6, 5);
            double[] lv = new double[30];
            for (int i = 0; i < 6; i++) for (int j = 0; j < 5; j++) lv[i * 5 + j] = (i + 1) * (j - 2); // rank 1
            low.copyFrom(lv);
            checkSvd(f, low, 6, 5, 5);
        }
    }

    private static void checkSvd(Fixtures f, Tensor a, int m, int n, int k) {
        Tensor u = f.zeros(DType.F32, m, k), s = f.zeros(DType.F32, k), vt = f.zeros(DType.F32, k, n);
        a.ops().svd(a, u, s, vt);
        double[] uv = u.toDoubleArray(), sv = s.toDoubleArray(), vv = vt.toDoubleArray();
        for (int i = 1; i < k; i++) assertTrue(sv[i - 1] >= sv[i], "descending singular values");
        double[] us = new double[m * k];
        for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) us[i * k + j] = uv[i * k + j] * sv[j];
        assertClose(Ref.matmul(us, vv, m, k, n), a.toDoubleArray(), 1e-5, "U S Vt = A for " + m + "x" + n);
        double[] utu = Ref.matmul(Ref.transpose(uv, m, k), uv, k, m, k);
        double[] vvt = Ref.matmul(vv, Ref.transpose(vv, k, n), k, n, k);
        double[] eye = new double[k * k];
        for (int i = 0; i < k; i++) eye[i * k + i] = 1;
        assertClose(utu, eye, 1e-5, "U orthonormal columns");
        assertClose(vvt, eye, 1e-5, "Vt orthonormal rows");
    }

    @ParameterizedTest @MethodSource("devices")
    void blockQuantizationRoundTripsAndKeepsSigns(Device d) {
        try (Fixtures f = fx(d)) {
            double[] codeV = new double[256];
            for (int i = 0; i < 256; i++) codeV[i] = -1 + 2.0 * i / 255; // a sorted linear signed code
            Tensor code = f.zeros(DType.F32, 256);
            code.copyFrom(codeV);
            int n = 1000, block = 256;
            Tensor x = f.random(DType.F32, n), q = f.zeros(DType.U8, n), absmax = f.zeros(DType.F32, 4), back = f.zeros(DType.F32, n);
            x.ops().quantizeBlockwise(x, code, absmax, q, block, true);
            x.ops().dequantizeBlockwise(q, code, absmax, back, block);
            double[] xv = x.toDoubleArray(), bv = back.toDoubleArray(), am = absmax.toDoubleArray();
            for (int i = 0; i < n; i++) {
                double scale = am[i / block];
                assertTrue(Math.abs(xv[i] - bv[i]) <= scale / 255 + 1e-7, "nearest code within half a step");
                if (xv[i] != 0) assertTrue(Math.signum(bv[i]) == Math.signum(xv[i]) || bv[i] == 0, "sign kept");
            }
            for (int b = 0; b < 4; b++) {
                double m = 0;
                for (int i = b * block; i < Math.min(n, (b + 1) * block); i++) m = Math.max(m, Math.abs(xv[i]));
                assertEquals(m, am[b], 0.0, "absmax of block " + b);
            }
        }
    }

    @ParameterizedTest @MethodSource("devices")
    void shapeErrorsNameShapesAndLabels(Device d) {
        try (Fixtures f = fx(d)) {
            Tensor a = f.arena.allocate("lhs", DType.F32, 64, 48), b = f.arena.allocate("rhs", DType.F32, 64, 48);
            Tensor out = f.arena.allocate("out", DType.F32, 64, 48);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.ops().matmul(a, b, out, 1, 0));
            assertTrue(e.getMessage().contains("[64, 48]") && e.getMessage().contains("lhs") && e.getMessage().contains("rhs"), e.getMessage());
            Tensor bad = f.arena.allocate("small", DType.F32, 3);
            e = assertThrows(IllegalArgumentException.class, () -> a.ops().binary(BinaryOp.ADD, a, bad, out));
            assertTrue(e.getMessage().contains("[3]") && e.getMessage().contains("do not broadcast"), e.getMessage());
        }
    }
}
