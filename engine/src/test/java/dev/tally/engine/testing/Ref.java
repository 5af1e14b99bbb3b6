package dev.tally.engine.testing;

import dev.tally.engine.Tensor;

/** Plain float64 reference math over row-major arrays, independent of the backends under test. */
public final class Ref {
    private Ref() {}

    /** Row-major values of any view, read element by element through the public index arithmetic. */
    public static double[] values(Tensor t) { return t.toDoubleArray(); }

    public static double[] matmul(double[] a, double[] b, int m, int k, int n) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) {
                double x = a[i * k + p];
                for (int j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
            }
        return c;
    }

    public static double[] transpose(double[] a, int m, int n) {
        double[] t = new double[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
        return t;
    }
}
