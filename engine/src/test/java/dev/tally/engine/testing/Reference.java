package dev.tally.engine.testing;

import dev.tally.engine.DType;
import org.junit.jupiter.api.Assertions;

/**
 * Plain double-precision reference math for op tests, plus comparison with tolerances that say where and by how much
 * a result is off. Arrays are row-major.
 */
public final class Reference {
    private Reference() {}

    /** The value as the dtype stores it (bf16/f16 round-to-nearest-even, f32 rounding). */
    public static double round(DType dt, double v) {
        return switch (dt) {
            case F32 -> (float) v;
            case BF16 -> DType.bf16ToF32(DType.f32ToBf16((float) v));
            case F16 -> DType.f16ToF32(DType.f32ToF16((float) v));
            default -> v;
        };
    }

    public static double[] round(DType dt, double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) r[i] = round(dt, v[i]);
        return r;
    }

    /** Relative precision of a dtype (unit roundoff), used to scale tolerances. */
    public static double eps(DType dt) {
        return switch (dt) {
            case F32 -> 0x1.0p-24;
            case BF16 -> 0x1.0p-8;
            case F16 -> 0x1.0p-11;
            default -> 0;
        };
    }

    /** c[m, n] = a[m, k] · b[k, n]. */
    public static double[] matmul(double[] a, double[] b, int m, int k, int n) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int p = 0; p < k; p++) {
                double av = a[i * k + p];
                for (int j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
            }
        }
        return c;
    }

    /** Row-major transpose of a [rows, cols] matrix. */
    public static double[] transpose(double[] a, int rows, int cols) {
        double[] t = new double[a.length];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        return t;
    }

    /** Broadcasts row-major {@code v} of shape {@code from} to shape {@code to} (numpy rules). */
    public static double[] broadcast(double[] v, int[] from, int[] to) {
        int n = 1;
        for (int d : to) n *= d;
        double[] out = new double[n];
        int r = to.length;
        int[] idx = new int[r];
        for (int i = 0; i < n; i++) {
            int rem = i;
            for (int d = r - 1; d >= 0; d--) {
                idx[d] = rem % to[d];
                rem /= to[d];
            }
            int src = 0;
            for (int d = 0; d < from.length; d++) {
                int td = d + (r - from.length);
                int k = from[d] == 1 ? 0 : idx[td];
                src = src * from[d] + k;
            }
            out[i] = v[src];
        }
        return out;
    }

    /**
     * Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise; NaN must match NaN and infinities must match
     * exactly. The message names the first offending index, both values, and {@code what}.
     */
    public static void assertClose(double[] expected, double[] actual, double rtol, double atol, String what) {
        Assertions.assertEquals(expected.length, actual.length, what + ": length");
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i];
            if (Double.isNaN(e) || Double.isNaN(a)) {
                if (Double.isNaN(e) != Double.isNaN(a)) Assertions.fail(what + ": at " + i + " expected " + e + " got " + a);
                continue;
            }
            if (Double.isInfinite(e) || Double.isInfinite(a)) {
                if (e != a) Assertions.fail(what + ": at " + i + " expected " + e + " got " + a);
                continue;
            }
            double err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
            if (err > worst) {
                worst = err;
                worstAt = i;
            }
        }
        if (worstAt >= 0) {
            Assertions.fail(what + ": at " + worstAt + " expected " + expected[worstAt] + " got " + actual[worstAt]
                    + " (rtol " + rtol + ", atol " + atol + ")");
        }
    }

    public static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
