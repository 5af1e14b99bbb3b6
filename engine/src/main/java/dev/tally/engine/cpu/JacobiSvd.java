package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/**
 * Thin SVD by one-sided (Hestenes) Jacobi rotations in double precision: columns of A are rotated until mutually
 * orthogonal; their norms are the singular values. Accurate for the matrix sizes GaLore needs on the CPU (≤ 4096).
 * For wide matrices the transpose is decomposed.
 */
final class JacobiSvd {
    private JacobiSvd() {}

    static void svd(Tensor a, Tensor u, Tensor s, Tensor vt) {
        int m = a.dim(0), n = a.dim(1);
        double[] av = toDouble(a);
        boolean wide = m < n;
        int rows = wide ? n : m, cols = wide ? m : n;
        // cols[j] holds column j of the (possibly transposed) matrix: rows × cols with rows >= cols
        double[][] c = new double[cols][rows];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                if (wide) c[i][j] = av[i * n + j]; else c[j][i] = av[i * n + j];
            }
        }
        double[][] v = new double[cols][cols];
        for (int j = 0; j < cols; j++) v[j][j] = 1;
        for (int sweep = 0; sweep < 60; sweep++) {
            boolean rotated = false;
            for (int p = 0; p < cols - 1; p++) {
                for (int q = p + 1; q < cols; q++) {
                    double alpha = 0, beta = 0, gamma = 0;
                    double[] cp = c[p], cq = c[q];
                    for (int i = 0; i < rows; i++) {
                        alpha += cp[i] * cp[i];
                        beta += cq[i] * cq[i];
                        gamma += cp[i] * cq[i];
                    }
                    if (gamma == 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.signum(zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    if (zeta == 0) t = 1;
                    double cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
                    for (int i = 0; i < rows; i++) {
                        double x = cp[i], y = cq[i];
                        cp[i] = cs * x - sn * y;
                        cq[i] = sn * x + cs * y;
                    }
                    double[] vp = v[p], vq = v[q];
                    for (int i = 0; i < cols; i++) {
                        double x = vp[i], y = vq[i];
                        vp[i] = cs * x - sn * y;
                        vq[i] = sn * x + cs * y;
                    }
                }
            }
            if (!rotated) break;
        }
        double[] sigma = new double[cols];
        for (int j = 0; j < cols; j++) {
            double ss = 0;
            for (double x : c[j]) ss += x * x;
            sigma[j] = Math.sqrt(ss);
        }
        Integer[] order = new Integer[cols];
        for (int j = 0; j < cols; j++) order[j] = j;
        java.util.Arrays.sort(order, (x, y) -> Double.compare(sigma[y], sigma[x]));
        // left vectors (length rows): normalized columns; zero singular values get an orthonormal completion
        double[][] left = new double[cols][];
        double tiny = sigma[order[0]] * 1e-13 * Math.max(rows, 1);
        for (int k = 0; k < cols; k++) {
            int j = order[k];
            double[] col = c[j].clone();
            if (sigma[j] > tiny && sigma[j] > 0) {
                for (int i = 0; i < rows; i++) col[i] /= sigma[j];
            } else {
                col = completion(left, k, rows);
            }
            left[k] = col;
        }
        // write: A = L Σ Rᵀ where (L, R) = (U, V) for tall, (V, U) for wide
        double[] uo = new double[m * cols], vo = new double[cols * n], so = new double[cols];
        for (int k = 0; k < cols; k++) {
            int j = order[k];
            so[k] = sigma[j];
            for (int i = 0; i < rows; i++) {
                if (wide) vo[k * n + i] = left[k][i]; else uo[i * cols + k] = left[k][i];
            }
            for (int i = 0; i < cols; i++) {
                if (wide) uo[i * cols + k] = v[j][i]; else vo[k * n + i] = v[j][i];
            }
        }
        u.copyFrom(uo);
        s.copyFrom(so);
        vt.copyFrom(vo);
    }

    /** A unit vector orthogonal to the first k vectors of {@code basis} (Gram–Schmidt over the standard basis). */
    private static double[] completion(double[][] basis, int k, int rows) {
        for (int e = 0; e < rows; e++) {
            double[] x = new double[rows];
            x[e] = 1;
            for (int pass = 0; pass < 2; pass++) {
                for (int b = 0; b < k; b++) {
                    double d = 0;
                    for (int i = 0; i < rows; i++) d += basis[b][i] * x[i];
                    for (int i = 0; i < rows; i++) x[i] -= d * basis[b][i];
                }
            }
            double nrm = 0;
            for (double y : x) nrm += y * y;
            nrm = Math.sqrt(nrm);
            if (nrm > 1e-6) {
                for (int i = 0; i < rows; i++) x[i] /= nrm;
                return x;
            }
        }
        throw new IllegalStateException("svd: no orthonormal completion found");
    }

    private static double[] toDouble(Tensor t) {
        return t.toDoubleArray();
    }
}
