package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Fixtures;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;

import static dev.tally.engine.testing.Reference.assertClose;
import static dev.tally.engine.testing.Reference.round;

/** matmul: sizes 1/prime/blocked-edge, transposed and sliced operands, batch broadcast, alpha/beta, bf16. */
class MatmulOpsTest {
    /**
     * {m, k, n}: trivial, primes, and sizes straddling register/cache block edges (just past the small-product
     * threshold: {64, 31, 17}; n one past a power of two: {33, 65, 129}; a long k with tiny m and n: {3, 200, 2}).
     */
    private static final int[][] SIZES = {{1, 1, 1}, {1, 7, 1}, {3, 5, 7}, {5, 7, 3}, {7, 13, 5}, {13, 17, 11}, {31, 2, 33},
            {64, 31, 17}, {33, 65, 129}, {3, 200, 2}, {65, 67, 97}, {130, 300, 47}, {4, 300, 2000}};

    private static double tol(DType dt, int k) {
        // fp32 accumulation over k products of inputs exact in dt; output rounded to dt
        return Cases.rtol(dt) + 1e-6 * Math.sqrt(k);
    }

    private static Tensor operand(MemoryArena arena, String label, DType dt, Shape shape, double[] v, Layout layout, boolean transposed) {
        if (!transposed) return Views.of(arena, label, dt, shape, v, layout);
        // the same logical matrix stored transposed: build [.., c, r] and view it with .t()
        int r = shape.rank();
        int[] d = shape.toArray();
        int rows = d[r - 2], cols = d[r - 1], batch = v.length / (rows * cols);
        double[] stored = new double[v.length];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(Reference.transpose(Arrays.copyOfRange(v, b * rows * cols, (b + 1) * rows * cols), rows, cols), 0,
                    stored, b * rows * cols, rows * cols);
        }
        int[] td = d.clone();
        td[r - 2] = cols;
        td[r - 1] = rows;
        return Views.of(arena, label, dt, Shape.of(td), stored, layout).t();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void matchesReferenceOnEveryLayout(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(51);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device, 32L << 20)) {
            for (int[] s : SIZES) {
                int m = s[0], k = s[1], n = s[2];
                for (int variant = 0; variant < 4; variant++) {
                    boolean ta = (variant & 1) != 0, tb = (variant & 2) != 0;
                    long mark = arena.mark();
                    double[] a = round(dt, r.normal(m * k));
                    double[] b = round(dt, r.normal(k * n));
                    Tensor xa = operand(arena, "a", dt, Shape.of(m, k), a, layout, ta);
                    Tensor xb = operand(arena, "b", dt, Shape.of(k, n), b, layout, tb);
                    Tensor out = Views.empty(arena, "out", dt, Shape.of(m, n), layout); // NaN-filled: beta = 0 must ignore it
                    ops.matmul(xa, xb, out, 1.0, 0.0);
                    double[] expect = round(dt, Reference.matmul(a, b, m, k, n));
                    String what = "matmul " + dt + " " + m + "x" + k + "x" + n + " ta=" + ta + " tb=" + tb + " " + layout;
                    assertClose(expect, Views.read(out), tol(dt, k), 1e-5 * Math.sqrt(k), what);
                    // alpha/beta accumulate into out
                    double[] c0 = Views.read(out);
                    ops.matmul(xa, xb, out, -0.5, 2.0);
                    double[] ab = Reference.matmul(a, b, m, k, n);
                    double[] e2 = new double[m * n];
                    for (int i = 0; i < e2.length; i++) e2[i] = round(dt, -0.5 * ab[i] + 2.0 * c0[i]);
                    assertClose(e2, Views.read(out), tol(dt, k) * 2, 1e-5 * Math.sqrt(k), what + " alpha=-0.5 beta=2");
                    arena.release(mark);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtype")
    void batchesBroadcast(Device device, DType dt) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(52);
        Ops ops = Backends.of(device).ops();
        int m = 5, k = 6, n = 7;
        try (MemoryArena arena = TestArenas.open(device)) {
            // a [2, 3, m, k] @ b [3, k, n] -> [2, 3, m, n]; a [1, 3, m, k] @ b [2, 1, k, n]; a batch against one shared b
            int[][][] cases = {{{2, 3}, {3}, {2, 3}}, {{1, 3}, {2, 1}, {2, 3}}, {{4}, {}, {4}}, {{2, 3}, {}, {2, 3}}};
            for (int[][] c : cases) for (boolean bTransposed : new boolean[]{true, false}) {
                int[] ba = c[0], bb = c[1], bo = c[2];
                int na = Arrays.stream(ba).reduce(1, (x, y) -> x * y), nb = Arrays.stream(bb).reduce(1, (x, y) -> x * y);
                int no = Arrays.stream(bo).reduce(1, (x, y) -> x * y);
                double[] a = round(dt, r.normal(na * m * k));
                double[] b = round(dt, r.normal(nb * k * n));
                Tensor xa = Views.of(arena, "a", dt, Shape.of(concat(ba, m, k)), a, Layout.SLICED);
                Tensor xb = operand(arena, "b", dt, Shape.of(concat(bb, k, n)), b, Layout.CONTIGUOUS, bTransposed);
                Tensor out = Views.empty(arena, "out", dt, Shape.of(concat(bo, m, n)), Layout.CONTIGUOUS);
                ops.matmul(xa, xb, out, 1.0, 0.0);
                double[] expect = new double[no * m * n];
                for (int o = 0; o < no; o++) {
                    int[] idx = unravel(o, bo);
                    int oa = ravelBroadcast(idx, ba), ob = ravelBroadcast(idx, bb);
                    double[] res = Reference.matmul(Arrays.copyOfRange(a, oa * m * k, (oa + 1) * m * k),
                            Arrays.copyOfRange(b, ob * k * n, (ob + 1) * k * n), m, k, n);
                    for (int i = 0; i < m * n; i++) expect[o * m * n + i] = round(dt, res[i]);
                }
                assertClose(expect, Views.read(out), tol(dt, k), 1e-5, "batched matmul " + Arrays.toString(ba) + " @ "
                        + Arrays.toString(bb) + (bTransposed ? " (b transposed) " : " ") + dt);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void bf16OperandsIntoAnF32OutputAccumulateInF32(Device device) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(53);
        Ops ops = Backends.of(device).ops();
        int m = 16, k = 300, n = 8;
        try (MemoryArena arena = TestArenas.open(device)) {
            double[] a = round(DType.BF16, r.uniform(m * k, -1, 1)), b = round(DType.BF16, r.uniform(k * n, -1, 1));
            Tensor xa = Views.of(arena, "a", DType.BF16, Shape.of(m, k), a);
            Tensor xb = Views.of(arena, "b", DType.BF16, Shape.of(k, n), b);
            Tensor out = Views.empty(arena, "out", DType.F32, Shape.of(m, n), Layout.CONTIGUOUS);
            ops.matmul(xa, xb, out, 1, 0);
            // bf16 products are exact in f32, so only the f32 sums round: far below one bf16 step (2^-8) of the result
            Fixtures.assertClose(Views.read(out), Reference.matmul(a, b, m, k, n), 1e-5, "bf16 @ bf16 -> f32, k = " + k);
        }
    }

    /**
     * A bf16 output with contiguous rows is converted a row at a time, a strided one element by element: the same bits,
     * overwritten or accumulated (beta ≠ 0), one product or a batch, rows split over the threads or not.
     */
    @org.junit.jupiter.api.Test
    void bf16OutputRowsGiveTheBitsOfTheElementwiseConversion() {
        Ops ops = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(61);
        for (int[] s : new int[][] {{1, 37, 300, 41}, {3, 9, 64, 5}, {1, 700, 256, 300}}) {
            int batch = s[0], m = s[1], k = s[2], n = s[3];
            try (MemoryArena arena = TestArenas.open(Device.CPU, 64L << 20)) {
                Tensor a = Views.of(arena, "a", DType.BF16, Shape.of(batch, m, k), r.uniform(batch * m * k, -1, 1));
                Tensor b = Views.of(arena, "b", DType.BF16, Shape.of(batch, k, n), r.uniform(batch * k * n, -1, 1));
                double[] prior = r.uniform(batch * m * n, -2, 2);
                for (double beta : new double[] {0, 0.5}) {
                    Tensor rows = Views.of(arena, "rows", DType.BF16, Shape.of(batch, m, n), prior);
                    // the same values in a [batch, n, m] buffer read transposed: unit stride across rows, not columns
                    Tensor stored = arena.allocate("cols", DType.BF16, batch, n, m);
                    Tensor cols = stored.transpose(-1, -2);
                    ops.copy(rows, cols);
                    ops.matmul(a, b, rows, 1, beta);
                    ops.matmul(a, b, cols, 1, beta);
                    assertArrayEquals(Views.read(cols), Views.read(rows), java.util.Arrays.toString(s) + " beta " + beta);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void expandedOperandAndZeroInnerDim(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            // a row vector expanded to 4 identical rows (stride 0)
            Tensor row = arena.allocate("row", DType.F32, 1, 3).copyFrom(new float[]{1, 2, 3});
            Tensor b = arena.allocate("b", DType.F32, 3, 2).copyFrom(new float[]{1, 0, 0, 1, 1, 1});
            Tensor out = arena.allocate("out", DType.F32, 4, 2);
            ops.matmul(row.expand(Shape.of(4, 3)), b, out, 1, 0);
            assertClose(new double[]{4, 5, 4, 5, 4, 5, 4, 5}, out.toDoubleArray(), 0, 0, "expanded a");
            // k = 0: the product is empty, out = beta·out
            Tensor a0 = arena.allocate("a0", DType.F32, 2, 0), b0 = arena.allocate("b0", DType.F32, 0, 2);
            Tensor o0 = arena.allocate("o0", DType.F32, 2, 2).copyFrom(new float[]{1, 2, 3, 4});
            ops.matmul(a0, b0, o0, 1, 0.5);
            assertClose(new double[]{0.5, 1, 1.5, 2}, o0.toDoubleArray(), 0, 0, "k = 0");
        }
    }

    private static int[] concat(int[] batch, int r, int c) {
        int[] d = Arrays.copyOf(batch, batch.length + 2);
        d[batch.length] = r;
        d[batch.length + 1] = c;
        return d;
    }

    private static int[] unravel(int flat, int[] dims) {
        int[] idx = new int[dims.length];
        for (int i = dims.length - 1; i >= 0; i--) {
            idx[i] = flat % dims[i];
            flat /= dims[i];
        }
        return idx;
    }

    /** Flat index into a batch shape right-aligned to {@code idx}, size-1 dims broadcast. */
    private static int ravelBroadcast(int[] idx, int[] dims) {
        int flat = 0;
        for (int i = 0; i < dims.length; i++) {
            int j = i + (idx.length - dims.length);
            flat = flat * dims[i] + (dims[i] == 1 ? 0 : idx[j]);
        }
        return flat;
    }
}
