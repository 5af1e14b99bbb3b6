package dev.tally.engine.cpu;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The row log-sum-exp of the loss against a float64 reference, and the exp it is built on. */
class LogSumExpRowsTest {
    @Test
    void vectorAndScalarExpAgreeBitForBitWithin2UlpOfExp() {
        int l = VectorExp.S.length();
        float[] xs = new float[l];
        float worst = 0;
        for (int k = 0; k < 200_000; k++) {
            for (int i = 0; i < l; i++) xs[i] = -87f * ((k * l + i) % 200_003) / 200_003f;
            float[] v = VectorExp.expNonPositive(FloatVector.fromArray(VectorExp.S, xs, 0)).toArray();
            for (int i = 0; i < l; i++) {
                float s = VectorExp.expNonPositive(xs[i]);
                assertEquals(Float.floatToRawIntBits(s), Float.floatToRawIntBits(v[i]), "lane " + i + " of exp(" + xs[i] + ")");
                double exact = Math.exp(xs[i]);
                worst = (float) Math.max(worst, Math.abs(s - exact) / Math.ulp((float) exact));
            }
        }
        assertTrue(worst <= 2f, "max error " + worst + " ulp");
        assertEquals(1f, VectorExp.expNonPositive(0f));
        assertTrue(VectorExp.expNonPositive(Float.NEGATIVE_INFINITY) < 1e-37f);
    }

    @Test
    void rowsAgainstFloat64IncludingNonFiniteRows() {
        SeededRandom r = new SeededRandom(3);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        try (MemoryArena arena = TestArenas.open(Device.CPU, 16L << 20)) {
            for (int len : new int[] {1, 7, 37, 8192, 32000}) {
                int rows = 6;
                double[] x = r.normal(rows * len);
                for (int i = 0; i < x.length; i++) x[i] *= 4;
                if (len > 1) {
                    x[len + 3 % len] = Double.NaN;                    // row 1: NaN
                    x[2 * len] = Double.NEGATIVE_INFINITY;            // row 2: one −∞ term (drops out)
                    x[3 * len + len / 2] = Double.POSITIVE_INFINITY;  // row 3: +∞
                    for (int j = 0; j < len; j++) x[4 * len + j] = Double.NEGATIVE_INFINITY; // row 4: all −∞
                }
                Tensor t = arena.allocate("x", DType.F32, rows, len);
                float[] f = new float[x.length];
                for (int i = 0; i < f.length; i++) f[i] = (float) x[i];
                t.copyFrom(f);
                Tensor out = arena.allocate("lse", DType.F32, rows, 1);
                ops.reduce(ReduceOp.LOGSUMEXP, t, 1, out);
                float[] got = out.toFloatArray();
                for (int row = 0; row < rows; row++) {
                    double m = Double.NEGATIVE_INFINITY;
                    boolean nan = false;
                    for (int j = 0; j < len; j++) {
                        nan |= Float.isNaN(f[row * len + j]);
                        m = Math.max(m, f[row * len + j]);
                    }
                    double want;
                    if (nan) want = Double.NaN;
                    else if (Double.isInfinite(m)) want = m;
                    else {
                        double s = 0;
                        for (int j = 0; j < len; j++) s += Math.exp(f[row * len + j] - m);
                        want = m + Math.log(s);
                    }
                    String what = "row " + row + " of length " + len;
                    if (Double.isNaN(want) || Double.isInfinite(want)) assertEquals((float) want, got[row], what);
                    else assertEquals(want, got[row], 2e-6 * Math.max(1, Math.abs(want)), what);
                }
                arena.free(out);
                arena.free(t);
            }
        }
    }
    /** A tile of a wider buffer (rows contiguous, gaps between them) into a strided column: the contiguous copy's bits. */
    @Test
    void tileOfAWiderBufferGivesTheContiguousBits() {
        SeededRandom r = new SeededRandom(4);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        try (MemoryArena arena = TestArenas.open(Device.CPU, 4L << 20)) {
            int rows = 9, len = 45, wide = 64;
            Tensor buffer = arena.allocate("buffer", DType.F32, rows, wide).copyFrom(r.normal(rows * wide));
            Tensor tile = buffer.slice(1, 3, 3 + len), packed = arena.allocate("packed", DType.F32, rows, len);
            ops.copy(tile, packed);
            Tensor outs = arena.allocate("outs", DType.F32, rows, 2), strided = outs.slice(1, 1, 2), plain = arena.allocate("plain", DType.F32, rows, 1);
            ops.reduce(ReduceOp.LOGSUMEXP, tile, 1, strided);
            ops.reduce(ReduceOp.LOGSUMEXP, packed, 1, plain);
            float[] a = plain.toFloatArray(), b = new float[rows];
            float[] both = outs.toFloatArray();
            for (int i = 0; i < rows; i++) b[i] = both[2 * i + 1];
            org.junit.jupiter.api.Assertions.assertArrayEquals(a, b);
        }
    }
}
