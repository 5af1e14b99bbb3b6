package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/**
 * Thin SVD by one-sided (Hestenes) Jacobi in double: rotate pairs of columns until all are orthogonal; the column
 * norms are the singular values and the accumulated rotations the right singular vectors. Accurate for
 * rank-deficient input; columns of u for (numerically) zero singular values are completed to an orthonormal set.
 */
final class JacobiSvd {
    private static final double EPS = 1e-15;
    private static final int MAX_SWEEPS = 80;

    private JacobiSvd() {}

    /** Result for a matrix with rows ≥ cols: u columns (cols × rows), s (cols), v columns (cols × cols). */
    record Result(double[][] u, double[] s, double[][] v) {}

    /** SVD of the matrix whose columns are {@code w} (each of length rows; rows ≥ w.length). w is overwritten. */
    static Result decompose(double[][] w, int rows) {
        int n = w.length;
        double[][] v = new double[n][n];
        for (int j = 0; j < n; j++) v[j][j] = 1.0;
        double[] norms = new double[n];
        // Round-robin (tournament) ordering: each round pairs every column with another, the pairs are disjoint and
        // are rotated in parallel. Squared norms are updated analytically within a sweep, recomputed between sweeps.
        int players = n + (n & 1);
        int[] ring = new int[players];
        for (int i = 0; i < players; i++) ring[i] = i;
        boolean parallel = (long) rows * n >= 1 << 15;
        for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
            for (int j = 0; j < n; j++) norms[j] = dot(w[j], w[j], rows);
            java.util.concurrent.atomic.AtomicBoolean rotated = new java.util.concurrent.atomic.AtomicBoolean();
            for (int round = 0; round < players - 1; round++) {
                int[] pairs = new int[players];
                for (int i = 0; i < players / 2; i++) {
                    pairs[2 * i] = ring[i];
                    pairs[2 * i + 1] = ring[players - 1 - i];
                }
                java.util.function.IntConsumer work = i -> {
                    int p = Math.min(pairs[2 * i], pairs[2 * i + 1]), q = Math.max(pairs[2 * i], pairs[2 * i + 1]);
                    if (q >= n) return; // the dummy player of an odd column count
                    if (rotatePair(w[p], w[q], v[p], v[q], norms, p, q, rows, n)) rotated.set(true);
                };
                if (parallel) {
                    CpuThreads.parallelFor(players / 2, CpuThreads.count(), work);
                } else {
                    for (int i = 0; i < players / 2; i++) work.accept(i);
                }
                // rotate the ring, keeping ring[0] fixed
                int last = ring[players - 1];
                System.arraycopy(ring, 1, ring, 2, players - 2);
                ring[1] = last;
            }
            if (!rotated.get()) break;
        }
        double[] sv = new double[n];
        for (int j = 0; j < n; j++) {
            double ss = 0;
            for (int i = 0; i < rows; i++) ss += w[j][i] * w[j][i];
            sv[j] = Math.sqrt(ss);
        }
        // sort descending by singular value
        Integer[] order = new Integer[n];
        for (int j = 0; j < n; j++) order[j] = j;
        java.util.Arrays.sort(order, (a, b) -> Double.compare(sv[b], sv[a]));
        double[][] u = new double[n][];
        double[][] vs = new double[n][];
        double[] s = new double[n];
        for (int j = 0; j < n; j++) {
            s[j] = sv[order[j]];
            u[j] = w[order[j]];
            vs[j] = v[order[j]];
        }
        double smax = n == 0 ? 0 : s[0];
        double tiny = smax * Math.max(rows, n) * 1e-14;
        for (int j = 0; j < n; j++) {
            if (s[j] > tiny && s[j] > 0) {
                for (int i = 0; i < rows; i++) u[j][i] /= s[j];
            } else {
                u[j] = completion(u, j, rows);
            }
        }
        return new Result(u, s, vs);
    }

    /** Orthogonalizes columns p and q if they are not yet orthogonal to working precision; true when it rotated. */
    private static boolean rotatePair(double[] wp, double[] wq, double[] vp, double[] vq, double[] norms, int p, int q, int rows, int n) {
        double alpha = norms[p], beta = norms[q];
        double gamma = dot(wp, wq, rows);
        if (gamma == 0 || Math.abs(gamma) <= EPS * Math.sqrt(alpha * beta)) return false;
        double zeta = (beta - alpha) / (2 * gamma);
        double t = zeta == 0 ? 1 : Math.signum(zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        double c = 1 / Math.sqrt(1 + t * t), s = c * t;
        rotate(wp, wq, c, s, rows);
        rotate(vp, vq, c, s, n);
        norms[p] = alpha - t * gamma;
        norms[q] = beta + t * gamma;
        return true;
    }

    private static double dot(double[] a, double[] b, int len) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= len; i += 4) {
            s0 += a[i] * b[i];
            s1 += a[i + 1] * b[i + 1];
            s2 += a[i + 2] * b[i + 2];
            s3 += a[i + 3] * b[i + 3];
        }
        for (; i < len; i++) s0 += a[i] * b[i];
        return (s0 + s1) + (s2 + s3);
    }

    private static void rotate(double[] a, double[] b, double c, double s, int len) {
        for (int i = 0; i < len; i++) {
            double x = a[i], y = b[i];
            a[i] = c * x - s * y;
            b[i] = s * x + c * y;
        }
    }

    /**
     * A unit vector orthogonal to u[0..j): the first standard basis vector that keeps more than half its length through
     * Gram–Schmidt, else the one that keeps the most. One always keeps at least √((rows − j) / rows) — the residuals'
     * squared norms sum to rows − j — but with one dimension left in 64 that is 1/8, so "more than half" alone can fail.
     */
    private static double[] completion(double[][] u, int j, int rows) {
        double[] best = null;
        double bestNorm = 0;
        for (int e = 0; e < rows; e++) {
            double[] x = new double[rows];
            x[e] = 1.0;
            for (int pass = 0; pass < 2; pass++) {
                for (int k = 0; k < j; k++) {
                    double d = 0;
                    for (int i = 0; i < rows; i++) d += u[k][i] * x[i];
                    for (int i = 0; i < rows; i++) x[i] -= d * u[k][i];
                }
            }
            double norm = 0;
            for (int i = 0; i < rows; i++) norm += x[i] * x[i];
            norm = Math.sqrt(norm);
            if (norm > 0.5) {
                for (int i = 0; i < rows; i++) x[i] /= norm;
                return x;
            }
            if (norm > bestNorm) {
                best = x;
                bestNorm = norm;
            }
        }
        if (best != null && bestNorm > 1e-6) {
            for (int i = 0; i < rows; i++) best[i] /= bestNorm;
            return best;
        }
        throw new IllegalStateException("svd: could not complete an orthonormal basis (rows " + rows + ", column " + j + ")");
    }

    static void svd(Tensor a, Tensor u, Tensor s, Tensor vt) {
        int m = a.dim(0), n = a.dim(1);
        Buf ba = Buf.of(a);
        long a0 = a.stride(0), a1 = a.stride(1);
        boolean tall = m >= n;
        int cols = tall ? n : m, rows = tall ? m : n;
        // tall: columns of a; wide: columns of aᵀ (= rows of a)
        double[][] w = new double[cols][rows];
        for (int j = 0; j < cols; j++) {
            for (int i = 0; i < rows; i++) {
                w[j][i] = tall ? ba.get(a.offset() + i * a0 + j * a1) : ba.get(a.offset() + j * a0 + i * a1);
            }
        }
        Result r = decompose(w, rows);
        // tall: a = U S Vᵀ. wide: aᵀ = U' S V'ᵀ, so a = V' S U'ᵀ: u = V', vt = U'ᵀ.
        double[][] left = tall ? r.u() : r.v();    // columns of the result u, each of length m
        double[][] right = tall ? r.v() : r.u();   // rows of the result vt, each of length n
        Buf bu = Buf.of(u), bs = Buf.of(s), bv = Buf.of(vt);
        int k = cols;
        for (int j = 0; j < k; j++) {
            bs.set(s.offset() + j * s.stride(0), r.s()[j]);
            for (int i = 0; i < m; i++) bu.set(u.offset() + i * u.stride(0) + j * u.stride(1), left[j][i]);
            for (int i = 0; i < n; i++) bv.set(vt.offset() + j * vt.stride(0) + i * vt.stride(1), right[j][i]);
        }
    }
}
