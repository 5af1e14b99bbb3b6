package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static dev.tally.engine.testing.Reference.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The CPU GEMM's fast paths against its element-by-element ones and a float64 reference: the register-transpose packing
 * of row-major A, transposed A and transposed B (F32, and BF16 widened on the way; f16 operands holding the same values
 * take the element loops, so all three must give the same bits), with ragged panels and k tails; and {@link Gemv}, whose
 * rows must have the bits the blocked product gives them.
 */
class GemmPathsTest {
    /** {m, k, n}: m off the 8/16-row panels, k tails after the 16-wide transposes and KC blocks (odd too), n off NR. */
    private static final int[][] SIZES = {{37, 300, 70}, {48, 257, 64}, {136, 33, 100}, {16, 16, 33}, {9, 513, 40}};

    @Test
    void everyPackingPathGivesTheBitsOfTheElementPath() {
        SeededRandom r = new SeededRandom(91);
        try (MemoryArena arena = TestArenas.open(Device.CPU, 64L << 20)) {
            for (int[] s : SIZES) {
                int m = s[0], k = s[1], n = s[2];
                // values exact in bf16 and in f16 (|x| ≥ 1/64 keeps f16 normal): the same floats whether the operand is F32
                // or BF16 (vector packing, BF16 widened) or F16 (element loops)
                double[] a = Reference.round(DType.BF16, awayFromZero(r.normal(m * k)));
                double[] b = Reference.round(DType.BF16, awayFromZero(r.normal(k * n)));
                double[] c0 = r.normal(m * n);
                double[] ab = Reference.matmul(a, b, m, k, n);
                double[] expect = new double[m * n];
                for (int i = 0; i < expect.length; i++) expect[i] = 0.5 * ab[i] + 0.25 * c0[i];
                double[] first = null;
                for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                    for (int variant = 0; variant < 4; variant++) {
                        for (Layout layout : Layout.values()) {
                            long mark = arena.mark();
                            boolean ta = (variant & 1) != 0, tb = (variant & 2) != 0;
                            Tensor xa = operand(arena, "a", dt, m, k, a, layout, ta);
                            Tensor xb = operand(arena, "b", dt, k, n, b, layout, tb);
                            Tensor out = Views.of(arena, "out", DType.F32, Shape.of(m, n), c0, layout);
                            Matmul.matmul(xa, xb, out, 0.5, 0.25);
                            double[] got = Views.read(out);
                            String what = m + "x" + k + "x" + n + " " + dt + " ta=" + ta + " tb=" + tb + " " + layout;
                            assertClose(expect, got, 1e-5, 1e-5 * Math.sqrt(k), what);
                            if (first == null) first = got;
                            else assertArrayEquals(first, got, 0.0, what + " differs from F32 contiguous in some bit");
                            arena.release(mark);
                        }
                    }
                }
            }
        }
    }

    @Test
    void oneRowAndOneColumnProductsHaveTheBlockedProductsBits() {
        SeededRandom r = new SeededRandom(92);
        int k = 600, n = 70; // three KC blocks; 70 columns = a 64-wide vector chunk and a scalar tail
        try (MemoryArena arena = TestArenas.open(Device.CPU, 64L << 20)) {
            double[] a2 = r.normal(2 * k), b = r.normal(k * n), c2 = r.normal(2 * n);
            for (Layout layout : Layout.values()) {
                for (boolean transposed : new boolean[] {false, true}) {
                    long mark = arena.mark();
                    String what = layout + (transposed ? " transposed" : "");
                    // one row: [1, k] · [k, n] (Gemv) against row 0 of [2, k] · [k, n] (blocked), alpha 0.75, beta 1
                    Tensor xb = operand(arena, "b", DType.F32, k, n, b, layout, transposed);
                    Tensor blocked = Views.of(arena, "out2", DType.F32, Shape.of(2, n), c2, layout);
                    Matmul.matmul(operand(arena, "a2", DType.F32, 2, k, a2, layout, false), xb, blocked, 0.75, 1);
                    Tensor row = Views.of(arena, "out1", DType.F32, Shape.of(1, n), Arrays.copyOf(c2, n), layout);
                    Matmul.matmul(operand(arena, "a1", DType.F32, 1, k, Arrays.copyOf(a2, k), layout, false), xb, row, 0.75, 1);
                    assertArrayEquals(Arrays.copyOf(Views.read(blocked), n), Views.read(row), 0.0, "one row, b " + what);
                    double[] expect = Reference.matmul(Arrays.copyOf(a2, k), b, 1, k, n);
                    for (int j = 0; j < n; j++) expect[j] = 0.75 * expect[j] + c2[j];
                    assertClose(expect, Views.read(row), 1e-5, 1e-4, "one row vs float64, b " + what);

                    // one column: [n, k] · [k, 1] (Gemv over Aᵀ) against column 0 of [n, k] · [k, 2]; beta 0 over NaN
                    double[] bt = Reference.transpose(a2, 2, k); // [k, 2]: column 0 is a2's first row
                    Tensor xa = operand(arena, "a", DType.F32, n, k, Reference.transpose(b, k, n), layout, transposed);
                    Tensor blockedCols = Views.empty(arena, "outc2", DType.F32, Shape.of(n, 2), layout);
                    Matmul.matmul(xa, operand(arena, "v2", DType.F32, k, 2, bt, layout, false), blockedCols, 0.75, 0);
                    Tensor col = Views.empty(arena, "outc1", DType.F32, Shape.of(n, 1), layout); // NaN-filled
                    Matmul.matmul(xa, operand(arena, "v1", DType.F32, k, 1, Arrays.copyOf(a2, k), layout, false), col, 0.75, 0);
                    double[] both = Views.read(blockedCols), first = new double[n];
                    for (int i = 0; i < n; i++) first[i] = both[2 * i];
                    assertArrayEquals(first, Views.read(col), 0.0, "one column, a " + what);
                    double[] ref = Reference.matmul(Reference.transpose(b, k, n), Arrays.copyOf(a2, k), n, k, 1);
                    for (int i = 0; i < n; i++) ref[i] *= 0.75;
                    assertClose(ref, Views.read(col), 1e-5, 1e-4, "one column vs float64, a " + what);
                    arena.release(mark);
                }
            }
        }
    }

    @Test
    void oneRowProductsBroadcastOverBatches() {
        SeededRandom r = new SeededRandom(93);
        int k = 300, n = 130;
        try (MemoryArena arena = TestArenas.open(Device.CPU, 16L << 20)) {
            // a [3, 1, k] against one shared b [k, n]; and one shared row [1, k] against b [3, k, n]
            double[] a = r.normal(3 * k), b = r.normal(3 * k * n);
            Tensor out = Views.empty(arena, "out", DType.F32, Shape.of(3, 1, n), Layout.SLICED);
            Matmul.matmul(Views.of(arena, "a", DType.F32, Shape.of(3, 1, k), a), Views.of(arena, "b", DType.F32, Shape.of(k, n),
                    Arrays.copyOf(b, k * n)), out, 1, 0);
            double[] expect = new double[3 * n];
            for (int i = 0; i < 3; i++) {
                System.arraycopy(Reference.matmul(Arrays.copyOfRange(a, i * k, (i + 1) * k), b, 1, k, n), 0, expect, i * n, n);
            }
            assertClose(expect, Views.read(out), 1e-5, 1e-4, "[3, 1, k] @ [k, n]");
            Matmul.matmul(Views.of(arena, "a1", DType.F32, Shape.of(1, k), Arrays.copyOf(a, k)),
                    Views.of(arena, "b3", DType.F32, Shape.of(3, k, n), b), out, 1, 0);
            for (int i = 0; i < 3; i++) {
                System.arraycopy(Reference.matmul(Arrays.copyOf(a, k), Arrays.copyOfRange(b, i * k * n, (i + 1) * k * n), 1, k, n),
                        0, expect, i * n, n);
            }
            assertClose(expect, Views.read(out), 1e-5, 1e-4, "[1, k] @ [3, k, n]");
        }
    }

    @Test
    void threadCountDoesNotChangeOneRowProducts() {
        SeededRandom r = new SeededRandom(94);
        int k = 512, n = 4000; // above the parallel threshold: split into column ranges
        try (MemoryArena arena = TestArenas.open(Device.CPU, 32L << 20)) {
            Tensor a = Views.of(arena, "a", DType.F32, Shape.of(1, k), r.normal(k));
            Tensor b = Views.of(arena, "b", DType.F32, Shape.of(k, n), r.normal(k * n));
            Tensor one = arena.allocate("one", DType.F32, 1, n), two = arena.allocate("two", DType.F32, 1, n);
            Matmul.matmul(a, b, one, 1, 0, 1);
            Matmul.matmul(a, b, two, 1, 0, 2);
            assertArrayEquals(one.toDoubleArray(), two.toDoubleArray(), 0.0);
        }
    }

    private static double[] awayFromZero(double[] v) {
        for (int i = 0; i < v.length; i++) v[i] += Math.copySign(1.0 / 64, v[i]);
        return v;
    }

    /** The logical [rows, cols] matrix {@code v} in {@code layout}, or stored transposed and viewed with {@code .t()}. */
    private static Tensor operand(MemoryArena arena, String label, DType dt, int rows, int cols, double[] v, Layout layout, boolean transposed) {
        if (!transposed) return Views.of(arena, label, dt, Shape.of(rows, cols), v, layout);
        return Views.of(arena, label, dt, Shape.of(cols, rows), Reference.transpose(v, rows, cols), layout).t();
    }
}
