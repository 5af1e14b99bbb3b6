package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.tally.engine.testing.Reference.assertClose;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Thin SVD: reconstruction, orthonormal factors, descending values, tall/wide/square/rank-deficient inputs. */
class SvdOpsTest {

    /** {m, n, rank} (rank = min(m, n) means full rank). */
    private static final int[][] CASES = {{1, 1, 1}, {1, 5, 1}, {5, 1, 1}, {7, 7, 7}, {13, 5, 5}, {5, 13, 5}, {40, 24, 24},
            {24, 40, 24}, {12, 9, 3}, {9, 12, 2}, {6, 6, 0}};

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceLayout")
    void factorsReconstructTheInput(Device device, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(61);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (int[] c : CASES) {
                int m = c[0], n = c[1], rank = c[2], k = Math.min(m, n);
                // a = L · R with L [m, rank], R [rank, n]: exactly rank-deficient when rank < k
                double[] a = rank == 0 ? new double[m * n]
                        : Reference.round(DType.F32, Reference.matmul(r.normal(m * rank), r.normal(rank * n), m, rank, n));
                Tensor ta = Views.of(arena, "a", DType.F32, Shape.of(m, n), a, layout);
                Tensor u = Views.empty(arena, "u", DType.F32, Shape.of(m, k), layout);
                Tensor s = Views.empty(arena, "s", DType.F32, Shape.of(k), layout);
                Tensor vt = Views.empty(arena, "vt", DType.F32, Shape.of(k, n), layout);
                ops.svd(ta, u, s, vt);
                double[] du = Views.read(u), ds = Views.read(s), dv = Views.read(vt);
                String what = "svd " + m + "x" + n + " rank " + rank + " " + layout;
                double scale = 1e-30;
                for (double v : a) scale = Math.max(scale, Math.abs(v));
                for (int i = 1; i < k; i++) assertTrue(ds[i] <= ds[i - 1], what + ": singular values not descending");
                for (int i = rank; i < k; i++) assertTrue(ds[i] <= 1e-5 * scale * k, what + ": s[" + i + "] = " + ds[i] + " should be 0");
                // u·diag(s)·vt = a
                double[] us = new double[m * k];
                for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) us[i * k + j] = du[i * k + j] * ds[j];
                assertClose(a, Reference.matmul(us, dv, m, k, n), 0, 1e-5 * scale * k, what + ": reconstruction");
                // uᵀu = I and vt·vtᵀ = I (also for the columns that belong to zero singular values)
                double[] eye = new double[k * k];
                for (int i = 0; i < k; i++) eye[i * k + i] = 1;
                assertClose(eye, Reference.matmul(Reference.transpose(du, m, k), du, k, m, k), 0, 1e-5, what + ": uᵀu");
                assertClose(eye, Reference.matmul(dv, Reference.transpose(dv, k, n), k, n, k), 0, 1e-5, what + ": vt·vtᵀ");
            }
        }
    }

    /**
     * I − 11ᵀ/n: rank n − 1, its null vector spread evenly, so completing U's last column from a standard basis vector
     * keeps only 1/√n of that vector's length (the completion used to require more than half and gave up at n = 64).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void aNullVectorSpreadOverEveryCoordinateIsCompleted(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        int n = 64;
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) a[i * n + j] = (i == j ? 1 : 0) - 1.0 / n;
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor ta = arena.allocate("a", DType.F32, n, n).copyFrom(a);
            Tensor u = arena.allocate("u", DType.F32, n, n), s = arena.allocate("s", DType.F32, n), vt = arena.allocate("vt", DType.F32, n, n);
            ops.svd(ta, u, s, vt);
            double[] du = u.toDoubleArray(), ds = s.toDoubleArray(), dv = vt.toDoubleArray();
            assertTrue(Math.abs(ds[n - 1]) < 1e-5 && Math.abs(ds[0] - 1) < 1e-5, "singular values 1 (n − 1 times) and 0");
            double[] eye = new double[n * n];
            for (int i = 0; i < n; i++) eye[i * n + i] = 1;
            assertClose(eye, Reference.matmul(Reference.transpose(du, n, n), du, n, n, n), 0, 1e-5, "uᵀu");
            assertClose(eye, Reference.matmul(dv, Reference.transpose(dv, n, n), n, n, n), 0, 1e-5, "vt·vtᵀ");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void knownSingularValues(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            // [[3, 0], [0, -4], [0, 0]] has singular values 4, 3
            Tensor a = arena.allocate("a", DType.F32, 3, 2).copyFrom(new float[]{3, 0, 0, -4, 0, 0});
            Tensor u = arena.allocate("u", DType.F32, 3, 2), s = arena.allocate("s", DType.F32, 2), vt = arena.allocate("vt", DType.F32, 2, 2);
            ops.svd(a, u, s, vt);
            assertClose(new double[]{4, 3}, s.toDoubleArray(), 1e-6, 0, "singular values of diag(3, -4)");
            // bf16 input, f32 outputs
            Tensor ab = arena.allocate("ab", DType.BF16, 2, 2).copyFrom(new float[]{1, 1, 1, 1});
            Tensor u2 = arena.allocate("u2", DType.F32, 2, 2), s2 = arena.allocate("s2", DType.F32, 2), v2 = arena.allocate("v2", DType.F32, 2, 2);
            ops.svd(ab, u2, s2, v2);
            assertClose(new double[]{2, 0}, s2.toDoubleArray(), 0, 1e-6, "singular values of ones(2, 2)");
        }
    }
}
