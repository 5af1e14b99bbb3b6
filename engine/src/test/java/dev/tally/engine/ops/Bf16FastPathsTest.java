package dev.tally.engine.ops;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The contiguous bf16 paths of {@code fill} and {@code reduceAll(MAX_ABS)} (a bf16 run zeroes and checks every gradient
 * each step) and of ADD, SUB, MUL and DIV (residuals, SwiGLU) against what the element-by-element path computes: the same values on lengths around the thread split,
 * with −0, ±∞ and NaN placed anywhere, and strided views (which keep the general path) agreeing with them.
 */
class Bf16FastPathsTest {
    private static final int[] LENGTHS = {1, 7, 65536, 65536 * 2 + 5, 300_001};

    @Test
    void maxAbsMatchesTheElementwiseDefinition() {
        Ops ops = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(8);
        for (int n : LENGTHS) {
            double[] x = r.normal(n, 3.0);
            x[n / 2] = -0.0;
            for (double special : new double[] {Double.NaN, 0, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -1e30}) {
                double[] y = x.clone();
                int at = (int) ((n - 1) * 0.77);
                if (special != 0) y[at] = special;
                try (MemoryArena a = TestArenas.open(Device.CPU, 8L * n + (1 << 16))) {
                    Tensor t = Views.of(a, "x", DType.BF16, Shape.of(n), y), out = a.allocate("out", DType.F32, 1);
                    ops.reduceAll(ReduceOp.MAX_ABS, t, out);
                    String what = "n=" + n + " with " + special;
                    assertMaxAbs(y, n, 1, out.item(), what);
                    if (n > 2) { // a strided view of every other element takes the general path: the same answer for its elements
                        Tensor strided = t.reshape(n).slice(0, 0, n - n % 2).reshape((n - n % 2) / 2, 2).slice(1, 0, 1);
                        ops.reduceAll(ReduceOp.MAX_ABS, strided, out);
                        assertMaxAbs(y, n - n % 2, 2, out.item(), "strided " + what);
                    }
                }
            }
        }
    }

    /** max |x| over y[0], y[step], … below end as bf16 holds the values, NaN if any is NaN, against {@code got}. */
    private static void assertMaxAbs(double[] y, int end, int step, double got, String what) {
        double expected = 0;
        boolean nan = false;
        for (int i = 0; i < end; i += step) {
            double b = DType.bf16ToF32(DType.f32ToBf16((float) y[i])); // the value bf16 holds
            nan |= Double.isNaN(b);
            expected = Math.max(expected, Math.abs(b));
        }
        if (nan) assertTrue(Double.isNaN(got), what);
        else assertEquals(expected, got, what);
    }

    @Test
    void fillWritesTheRoundedValueEverywhere() {
        Ops ops = Backends.of(Device.CPU).ops();
        for (int n : LENGTHS) {
            for (double value : new double[] {0, -0.0, 1.0 / 3, -1e30, Double.NaN}) {
                try (MemoryArena a = TestArenas.open(Device.CPU, 4L * n + (1 << 16))) {
                    Tensor t = Views.empty(a, "x", DType.BF16, Shape.of(n), Layout.CONTIGUOUS);
                    ops.fill(t, value);
                    short expected = DType.f32ToBf16((float) value);
                    java.lang.foreign.MemorySegment host = java.lang.foreign.MemorySegment.ofArray(new short[n]);
                    ops.copyToHost(t, host);
                    for (int i = 0; i < n; i++) {
                        assertEquals(expected, host.getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i), "n=" + n + " value " + value + " at " + i);
                    }
                }
            }
        }
    }

    /**
     * bf16 ADD, SUB, MUL, DIV on contiguous operands (same shape, and a row repeated over the rows; the second operand
     * bf16 or F32) against the same values through permuted views, which take the element loop's double arithmetic: bit
     * for bit, with specials (NaN,
     * ±∞, ±0, values that overflow or underflow when combined, exact ties of the bf16 rounding) and a vector tail.
     */
    @Test
    void binaryOpsGiveTheElementLoopsBits() {
        Ops ops = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(9);
        int rows = 67, cols = 37;
        double[] a = r.normal(rows * cols, 2.0), b = r.normal(rows * cols, 2.0), row = r.normal(cols, 1.0);
        double[] specials = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0.0, -0.0, 3e38, -3e38, 1e-38, 1 + 1.0 / 256, 1.0 / 3};
        for (int k = 0; k < specials.length; k++) {
            a[k * 7] = specials[k];
            b[k * 11 + 3] = specials[specials.length - 1 - k];
            b[k * 13 + 1] = specials[k];
            row[k % cols] = specials[(k + 3) % specials.length];
        }
        try (MemoryArena arena = TestArenas.open(Device.CPU, 1 << 20)) {
            for (dev.tally.engine.BinaryOp op : new dev.tally.engine.BinaryOp[] {dev.tally.engine.BinaryOp.ADD, dev.tally.engine.BinaryOp.SUB,
                    dev.tally.engine.BinaryOp.MUL, dev.tally.engine.BinaryOp.DIV}) {
                for (int variant = 0; variant < 4; variant++) {
                    boolean broadcast = variant % 2 == 1;
                    DType bType = variant < 2 ? DType.BF16 : DType.F32; // a bf16 and an fp32 operand: b read in place
                    Shape bs = broadcast ? Shape.of(cols) : Shape.of(rows, cols);
                    double[] bv = broadcast ? row : b;
                    double[][] got = new double[2][];
                    Layout[] layouts = {Layout.CONTIGUOUS, Layout.PERMUTED};
                    for (int k = 0; k < 2; k++) {
                        Tensor ta = Views.of(arena, "a", DType.BF16, Shape.of(rows, cols), a, layouts[k]);
                        Tensor tb = Views.of(arena, "b", bType, bs, bv, layouts[k]);
                        Tensor out = Views.empty(arena, "out", DType.BF16, Shape.of(rows, cols), layouts[k]);
                        ops.binary(op, ta, tb, out);
                        got[k] = Views.read(out);
                    }
                    String what = op + (broadcast ? " row" : " same shape") + ", b " + bType;
                    for (int i = 0; i < got[0].length; i++) {
                        assertEquals(Double.doubleToRawLongBits(got[1][i]), Double.doubleToRawLongBits(got[0][i]), what + " at " + i);
                    }
                }
            }
        }
    }

    /**
     * Contiguous bf16 unary ops (and the backward of SILU, SIGMOID, EXP) are the fp32 kernel over the widened values,
     * rounded once to bf16: checked against that composition (a widening copy, the F32 op, a rounding copy) on a length
     * past two element chunks with a vector tail, with specials, and in place.
     */
    @Test
    void unaryOpsAreTheFp32KernelRoundedOnce() {
        Ops ops = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(10);
        int n = 2 * 65536 + 37;
        double[] x = r.normal(n, 3.0), dy = r.normal(n, 1.0);
        double[] specials = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0.0, -0.0, 100, -100, 1e-30};
        for (int k = 0; k < specials.length; k++) x[k * 9001] = specials[k];
        x[n - 1] = -0.0;
        try (MemoryArena arena = TestArenas.open(Device.CPU, 40L * n)) {
            Tensor hx = Views.of(arena, "x", DType.BF16, Shape.of(n), x), hdy = Views.of(arena, "dy", DType.BF16, Shape.of(n), dy);
            Tensor fx = arena.allocate("fx", DType.F32, n), fdy = arena.allocate("fdy", DType.F32, n), f = arena.allocate("f", DType.F32, n);
            Tensor expect = arena.allocate("expect", DType.BF16, n), got = arena.allocate("got", DType.BF16, n);
            ops.copy(hx, fx);
            ops.copy(hdy, fdy);
            for (dev.tally.engine.UnaryOp op : dev.tally.engine.UnaryOp.values()) {
                boolean forward = switch (op) {
                    case NEG, ABS, EXP, SQRT, RSQRT, SQUARE, RECIPROCAL, SIGMOID, SILU -> true;
                    default -> false;
                };
                boolean backward = op == dev.tally.engine.UnaryOp.SILU || op == dev.tally.engine.UnaryOp.SIGMOID || op == dev.tally.engine.UnaryOp.EXP;
                if (forward) {
                    ops.unary(op, fx, f);
                    ops.copy(f, expect);
                    ops.unary(op, hx, got);
                    assertSameBits(expect, got, op + " forward");
                    ops.copy(hx, got);
                    ops.unary(op, got, got); // in place
                    assertSameBits(expect, got, op + " forward in place");
                }
                if (backward) {
                    ops.unaryBackward(op, fx, fdy, f);
                    ops.copy(f, expect);
                    ops.unaryBackward(op, hx, hdy, got);
                    assertSameBits(expect, got, op + " backward");
                }
            }
        }
    }

    /**
     * Contiguous bf16 RMSNorm and its backward are the fp32 kernel over the widened rows, each output rounded once (rstd
     * and an fp32 weight gradient exactly the fp32 kernel's; a bf16 weight gradient its rounding): against that
     * composition, with the weight in bf16 and in fp32, on rows split over the threads, a row width with a vector tail,
     * and x's specials.
     */
    @Test
    void rmsNormIsTheFp32KernelRoundedOnce() {
        Ops ops = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(11);
        for (int[] shape : new int[][] {{1030, 256}, {9, 37}, {3, 1}}) {
            int rows = shape[0], d = shape[1], n = rows * d;
            double[] x = r.normal(n, 2.0), dy = r.normal(n, 1.0), w = r.normal(d, 1.0);
            if (n > 100) {
                x[5] = Double.NaN;
                x[d + 3] = Double.POSITIVE_INFINITY;
                for (int j = 0; j < d; j++) x[2 * d + j] = 0; // a zero row: rstd = 1/√eps
                x[3 * d + 1] = 1e30;
            }
            try (MemoryArena arena = TestArenas.open(Device.CPU, 64L * n + 64L * d + (1 << 16))) {
                Tensor hx = Views.of(arena, "x", DType.BF16, Shape.of(rows, d), x), hdy = Views.of(arena, "dy", DType.BF16, Shape.of(rows, d), dy);
                Tensor fx = arena.allocate("fx", DType.F32, rows, d), fdy = arena.allocate("fdy", DType.F32, rows, d);
                ops.copy(hx, fx);
                ops.copy(hdy, fdy);
                for (DType wt : new DType[] {DType.BF16, DType.F32}) {
                    String what = rows + "x" + d + " weight " + wt;
                    Tensor hw = Views.of(arena, "w", wt, Shape.of(d), w), fw = arena.allocate("fw", DType.F32, d);
                    ops.copy(hw, fw);
                    Tensor f = arena.allocate("f", DType.F32, rows, d), fr = arena.allocate("fr", DType.F32, rows);
                    Tensor expect = arena.allocate("expect", DType.BF16, rows, d), got = arena.allocate("got", DType.BF16, rows, d);
                    Tensor gr = arena.allocate("gr", DType.F32, rows);
                    ops.rmsNorm(fx, fw, 1e-5, f, fr);
                    ops.copy(f, expect);
                    ops.rmsNorm(hx, hw, 1e-5, got, gr);
                    assertSameBits(expect, got, what + " forward");
                    assertSameFloats(fr, gr, what + " rstd");

                    Tensor fdw = arena.allocate("fdw", DType.F32, d), gdw = arena.allocate("gdw", wt, d), edw = arena.allocate("edw", wt, d);
                    ops.rmsNormBackward(fx, fw, fr, fdy, f, fdw);
                    ops.copy(f, expect);
                    ops.copy(fdw, edw);
                    ops.rmsNormBackward(hx, hw, gr, hdy, got, gdw);
                    assertSameBits(expect, got, what + " dx");
                    if (wt == DType.BF16) assertSameBits(edw, gdw, what + " dw");
                    else assertSameFloats(edw, gdw, what + " dw");
                    ops.rmsNormBackward(hx, hw, gr, hdy, got, null);
                    assertSameBits(expect, got, what + " dx without dw");
                    for (Tensor t : new Tensor[] {edw, gdw, fdw, gr, got, expect, fr, f, fw, hw}) arena.free(t);
                }
            }
        }
    }

    private static void assertSameFloats(Tensor expect, Tensor got, String what) {
        float[] e = expect.toFloatArray(), g = got.toFloatArray();
        for (int i = 0; i < e.length; i++) assertEquals(Float.floatToIntBits(e[i]), Float.floatToIntBits(g[i]), what + " at " + i);
    }

    private static void assertSameBits(Tensor expect, Tensor got, String what) {
        int n = (int) expect.numel();
        java.lang.foreign.MemorySegment e = java.lang.foreign.MemorySegment.ofArray(new short[n]), g = java.lang.foreign.MemorySegment.ofArray(new short[n]);
        expect.ops().copyToHost(expect, e);
        got.ops().copyToHost(got, g);
        for (int i = 0; i < n; i++) {
            assertEquals(e.getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i), g.getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i), what + " at " + i);
        }
    }
}
