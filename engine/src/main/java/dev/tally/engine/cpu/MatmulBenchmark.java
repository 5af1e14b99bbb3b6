package dev.tally.engine.cpu;

import dev.tally.engine.Arena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.Tensor;

import java.util.Arrays;
import java.util.concurrent.ForkJoinPool;

/**
 * CPU fp32 GEMM throughput (a benchmark, not a test): GFLOP/s at M×N×K = 1024×1024×1024 and 4096×4096×1024, single
 * thread and all threads, median of several timed repetitions after warm-up.
 *
 * <pre>java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp engine/target/classes \
 *     dev.tally.engine.cpu.MatmulBenchmark [reps]</pre>
 */
public final class MatmulBenchmark {
    private MatmulBenchmark() {}

    /** One measured configuration. */
    public record Result(int m, int n, int k, int threads, double medianSeconds, double gflops) {
        @Override public String toString() {
            return String.format("%5d x %5d x %5d  threads=%-2d  %8.2f ms  %7.1f GFLOP/s", m, n, k, threads, medianSeconds * 1e3, gflops);
        }
    }

    public static void main(String[] args) throws Exception {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        System.out.println("fp32 matmul on cpu (" + Runtime.getRuntime().availableProcessors() + " cores, vector species "
                + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED + ")");
        for (int[] s : new int[][] {{1024, 1024, 1024}, {4096, 4096, 1024}}) {
            System.out.println(run(s[0], s[1], s[2], 1, reps));
            System.out.println(run(s[0], s[1], s[2], Runtime.getRuntime().availableProcessors(), reps));
        }
    }

    /** Measures out[m,n] = a[m,k]·b[k,n] with {@code threads} worker threads. */
    public static Result run(int m, int n, int k, int threads, int reps) throws Exception {
        MemoryLedger ledger = new MemoryLedger();
        long bytes = Arena.bookedBytes(DType.F32, dev.tally.engine.Shape.of(m, k))
                + Arena.bookedBytes(DType.F32, dev.tally.engine.Shape.of(k, n))
                + Arena.bookedBytes(DType.F32, dev.tally.engine.Shape.of(m, n));
        try (Arena arena = new Arena(ledger, "bench", MemoryCategory.WORKSPACE, Device.CPU, bytes)) {
            Tensor a = arena.allocate("a", DType.F32, m, k);
            Tensor b = arena.allocate("b", DType.F32, k, n);
            Tensor c = arena.allocate("c", DType.F32, m, n);
            Ops ops = a.ops();
            ops.random(a, Distribution.NORMAL, 1, 0, 0, 1);
            ops.random(b, Distribution.NORMAL, 2, 0, 0, 1);
            ForkJoinPool pool = new ForkJoinPool(threads);
            try {
                double[] t = new double[reps];
                long warmEnd = System.nanoTime() + 2_000_000_000L; // warm up for 2 s so the kernel is JIT-compiled
                while (System.nanoTime() < warmEnd) {
                    if (threads == 1) CpuMatmul.gemmSingleThread(a, b, c); else pool.submit(() -> ops.matmul(a, b, c, 1, 0)).get();
                }
                for (int r = 0; r < reps; r++) {
                    long t0 = System.nanoTime();
                    if (threads == 1) {
                        CpuMatmul.gemmSingleThread(a, b, c);
                    } else {
                        pool.submit(() -> ops.matmul(a, b, c, 1, 0)).get();
                    }
                    double s = (System.nanoTime() - t0) * 1e-9;
                    if (r >= 0) t[r] = s;
                }
                Arrays.sort(t);
                double med = t[reps / 2];
                return new Result(m, n, k, threads, med, 2.0 * m * n * k / med / 1e9);
            } finally {
                pool.shutdown();
            }
        }
    }
}
