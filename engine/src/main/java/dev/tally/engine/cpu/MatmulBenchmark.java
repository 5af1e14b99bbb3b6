package dev.tally.engine.cpu;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * CPU fp32 matmul throughput: C[M, N] = A[M, K] · B[K, N], contiguous F32, single-threaded and on all threads,
 * after a warm-up, reporting the median of several repetitions. Run with
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp engine/target/classes dev.tally.engine.cpu.MatmulBenchmark}
 * (optional argument: repetitions).
 */
public final class MatmulBenchmark {
    private MatmulBenchmark() {}

    /** One measured configuration. */
    public record Result(int m, int n, int k, int threads, double medianSeconds, double gflops, double cpuGflops) {
        @Override public String toString() {
            String cpu = threads == 1 ? String.format(Locale.ROOT, " (%.1f GFLOP/s per CPU-second of the thread)", cpuGflops) : "";
            return String.format(Locale.ROOT, "M=%d N=%d K=%d threads=%d: median %.2f ms, %.1f GFLOP/s%s", m, n, k, threads,
                    medianSeconds * 1e3, gflops, cpu);
        }
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        System.out.println("tally cpu matmul benchmark (fp32, vector species " + Gemm.S + ", micro-tile " + Gemm.MR + "x" + Gemm.NR
                + ", " + CpuThreads.count() + " threads available)");
        for (int[] s : new int[][]{{1024, 1024, 1024}, {4096, 4096, 1024}}) {
            for (int threads : new int[]{1, CpuThreads.count()}) {
                System.out.println(measure(s[0], s[1], s[2], threads, reps));
            }
        }
    }

    /** Times C = A·B for the given sizes and thread count; the median over {@code reps} runs after warm-up. */
    public static Result measure(int m, int n, int k, int threads, int reps) {
        MemoryLedger ledger = new MemoryLedger();
        long bytes = 4L * ((long) m * k + (long) k * n + (long) m * n) + 3 * MemoryArena.ALIGNMENT;
        try (MemoryArena arena = new MemoryArena(ledger, "matmul-benchmark", MemoryCategory.WORKSPACE, Device.CPU, bytes)) {
            Tensor a = arena.allocate("a", DType.F32, m, k), b = arena.allocate("b", DType.F32, k, n);
            Tensor c = arena.allocate("c", DType.F32, m, n);
            SplittableRandom r = new SplittableRandom(1);
            fill(a, r);
            fill(b, r);
            double flops = 2.0 * m * n * k;
            // warm-up: enough calls for the JIT to compile the kernel, at least ~1 s of work
            long warmEnd = System.nanoTime() + 1_500_000_000L;
            int warm = 0;
            while (warm < 3 || (System.nanoTime() < warmEnd && warm < 50)) {
                Matmul.matmul(a, b, c, 1, 0, threads);
                warm++;
            }
            double[] t = new double[reps], cpu = new double[reps];
            var mx = java.lang.management.ManagementFactory.getThreadMXBean();
            for (int i = 0; i < reps; i++) {
                long c0 = mx.getCurrentThreadCpuTime();
                long t0 = System.nanoTime();
                Matmul.matmul(a, b, c, 1, 0, threads);
                t[i] = (System.nanoTime() - t0) * 1e-9;
                cpu[i] = (mx.getCurrentThreadCpuTime() - c0) * 1e-9;
            }
            Arrays.sort(t);
            Arrays.sort(cpu);
            double med = t[reps / 2];
            // CPU time of the calling thread: with one thread, the throughput of the core while it was not preempted
            return new Result(m, n, k, threads, med, flops / med * 1e-9, flops / cpu[reps / 2] * 1e-9);
        }
    }

    private static void fill(Tensor t, SplittableRandom r) {
        var seg = t.segment();
        for (long i = 0; i < t.numel(); i++) seg.setAtIndex(Buf.F, i, (float) (r.nextDouble() - 0.5));
    }
}
