package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.Tensor;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * One layer's causal attention, forward and backward, fused ({@link FlashAttention}) against the materialized path the
 * model falls back to (q·kᵀ and the causal softmax into [B, H, T, T], then the weighted sum; backward by two more
 * products, the softmax gradient and two accumulating ones), on [B, H, T, Dh] views of [B·T, H·Dh] storage as the model
 * passes them. Reports the median wall time and, because the machine may be shared, the median CPU time of the calling
 * thread (meaningful with {@code -Dtally.cpu.threads=1}). Run with
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp engine/target/classes dev.tally.engine.cpu.AttentionBenchmark [B H T Dh reps]}
 * (default: 8 4 256 64 and 4 4 256 64 and 2 4 1024 64, 15 repetitions).
 */
public final class AttentionBenchmark {
    private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();

    private AttentionBenchmark() {}

    public static void main(String[] args) {
        int reps = args.length >= 5 ? Integer.parseInt(args[4]) : 15;
        int[][] shapes = args.length >= 4
                ? new int[][]{{Integer.parseInt(args[0]), Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3])}}
                : new int[][]{{8, 4, 256, 64}, {4, 4, 256, 64}, {2, 4, 1024, 64}};
        System.out.println("tally cpu causal attention, one layer (" + CpuThreads.count() + " threads); median ms, wall / CPU of the calling thread");
        for (int[] s : shapes) measure(s[0], s[1], s[2], s[3], reps);
    }

    private static void measure(int b, int h, int t, int dh, int reps) {
        Ops ops = new CpuOps(Device.CPU);
        long n = (long) b * t * h * dh, probs = (long) b * h * t * t;
        long bytes = 4 * (9 * n + 2 * probs + (long) b * h * t) + 16 * MemoryArena.ALIGNMENT;
        try (MemoryArena arena = new MemoryArena(new MemoryLedger(), "attention-benchmark", MemoryCategory.WORKSPACE, Device.CPU, bytes)) {
            SplittableRandom r = new SplittableRandom(1);
            Tensor q = heads(random(arena, b * t, h * dh, r), b, t, h), k = heads(random(arena, b * t, h * dh, r), b, t, h);
            Tensor v = heads(random(arena, b * t, h * dh, r), b, t, h), dout = heads(random(arena, b * t, h * dh, r), b, t, h);
            Tensor out = heads(arena.allocate("out", DType.F32, b * t, h * dh), b, t, h), lse = arena.allocate("lse", DType.F32, b, h, t);
            Tensor dq = heads(arena.allocate("dq", DType.F32, b * t, h * dh), b, t, h), dk = heads(arena.allocate("dk", DType.F32, b * t, h * dh), b, t, h);
            Tensor dv = heads(arena.allocate("dv", DType.F32, b * t, h * dh), b, t, h);
            Tensor p = arena.allocate("probs", DType.F32, b, h, t, t), dp = arena.allocate("dprobs", DType.F32, b, h, t, t);
            double scale = 1 / Math.sqrt(dh);
            Runnable fusedForward = () -> ops.causalAttention(q, k, v, scale, out, lse);
            Runnable fusedBackward = () -> ops.causalAttentionBackward(q, k, v, out, lse, dout, scale, dq, dk, dv);
            Runnable materializedForward = () -> {
                ops.matmul(q, k.t(), p, scale, 0);
                ops.softmax(p, p, true);
                ops.matmul(p, v, out, 1, 0);
            };
            Runnable materializedBackward = () -> {
                ops.matmul(dout, v.t(), dp, 1, 0);
                ops.matmul(p.t(), dout, dv, 1, 1);
                ops.softmaxBackward(p, dp, dp);
                ops.matmul(dp, k, dq, scale, 1);
                ops.matmul(dp.t(), q, dk, scale, 1);
            };
            Runnable[] cases = {fusedForward, fusedBackward, materializedForward, materializedBackward};
            double[][] wall = new double[4][reps], cpu = new double[4][reps];
            for (int w = 0; w < 3; w++) for (Runnable c : cases) c.run(); // warm-up; then the cases interleaved
            for (int i = 0; i < reps; i++) {
                for (int c = 0; c < 4; c++) {
                    long w0 = System.nanoTime(), c0 = MX.getCurrentThreadCpuTime();
                    cases[c].run();
                    cpu[c][i] = (MX.getCurrentThreadCpuTime() - c0) / 1e6;
                    wall[c][i] = (System.nanoTime() - w0) / 1e6;
                }
            }
            System.out.printf(Locale.ROOT, "B %d H %d T %d Dh %d: fused forward %.2f / %.2f, backward %.2f / %.2f; materialized forward %.2f / %.2f, backward %.2f / %.2f%n",
                    b, h, t, dh, median(wall[0]), median(cpu[0]), median(wall[1]), median(cpu[1]), median(wall[2]), median(cpu[2]),
                    median(wall[3]), median(cpu[3]));
        }
    }

    private static Tensor random(MemoryArena arena, int rows, int cols, SplittableRandom r) {
        float[] x = new float[rows * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        return arena.allocate("x", DType.F32, rows, cols).copyFrom(x);
    }

    /** [B·T, H·Dh] as the [B, H, T, Dh] view the model passes. */
    private static Tensor heads(Tensor x, int b, int t, int h) { return x.reshape(b, t, h, x.dim(1) / h).permute(0, 2, 1, 3); }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
