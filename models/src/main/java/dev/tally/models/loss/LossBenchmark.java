package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

import dev.tally.models.loss.LinearCrossEntropy.Saved;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Cut Cross-Entropy against the materialized CE on the CPU: forward + backward of each at the head shapes of the
 * issue's configs (N×D×V = 2048×256×8192 and 1024×256×32000; hidden states N(0,1), classifier N(0, 0.02²) as at
 * initialisation, targets uniform), alternating CE and CCE, median wall time and median CPU time of the calling thread
 * (the latter less disturbed by other processes on a shared machine), with CCE's filter statistics. Run with
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp engine/target/classes:models/target/classes dev.tally.models.loss.LossBenchmark [reps] [f32|bf16]};
 * {@code -Dtally.cpu.threads=1} measures one thread. A second argument {@code bf16} runs the inputs in bf16, as bf16 training
 * does (CCE's filter then skips tiles at the reference's bf16 threshold).
 */
public final class LossBenchmark {
    private LossBenchmark() {}

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        DType dt = args.length > 1 ? DType.parse(args[1]) : DType.F32;
        for (int[] s : new int[][] {{2048, 256, 8192}, {1024, 256, 32000}}) run(s[0], s[1], s[2], reps, dt);
    }

    /** One shape: hidden states, classifier and their gradients in {@code dt} (F32, or BF16 as in bf16 training). */
    static void run(int n, int d, int v, int reps, DType dt) {
        MemoryLedger ledger = new MemoryLedger();
        LinearCrossEntropy ce = new CrossEntropy();
        CutCrossEntropy cce = new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT);
        long lossBytes = Math.max(ce.lossArenaBytes(n, d, v), cce.lossArenaBytes(n, d, v));
        long inputBytes = MemoryArena.bookedBytes(DType.F32, dev.tally.engine.Shape.of(n, d)) * 2
                + MemoryArena.bookedBytes(DType.F32, dev.tally.engine.Shape.of(v, d)) * 2 + MemoryArena.alignUp(8L * n) + 4 * MemoryArena.ALIGNMENT;
        try (MemoryArena in = new MemoryArena(ledger, "inputs", MemoryCategory.ACTIVATIONS, Device.CPU, inputBytes);
             MemoryArena loss = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, lossBytes)) {
            Tensor e = in.allocate("e", dt, n, d), c = in.allocate("c", dt, v, d);
            Tensor de = in.allocate("de", dt, n, d), dc = in.allocate("dc", dt, v, d);
            Tensor t = in.allocate("targets", DType.I64, n), out = in.allocate("loss", DType.F32, 1), dl = in.allocate("dloss", DType.F32, 1);
            e.ops().random(e, Distribution.NORMAL, 1, 0, 0, 1);
            e.ops().random(c, Distribution.NORMAL, 2, 0, 0, 0.02);
            long[] ids = new long[n];
            for (int i = 0; i < n; i++) ids[i] = (i * 2654435761L) % v;
            t.copyFrom(ids);
            dl.copyFrom(new float[] {1f});
            dc.ops().fill(dc, 0); // backward adds into dC, as into a parameter's gradient in training
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            List<double[]> ceTimes = new ArrayList<>(), cceTimes = new ArrayList<>();
            for (int r = -2; r < reps; r++) { // two untimed rounds for the JIT
                for (LinearCrossEntropy f : new LinearCrossEntropy[] {ce, cce}) {
                    long w0 = System.nanoTime(), c0 = mx.getCurrentThreadCpuTime();
                    f.backward(f.forward(e, c, t, out, loss), dl, de, dc, loss);
                    double[] times = {(System.nanoTime() - w0) * 1e-6, (mx.getCurrentThreadCpuTime() - c0) * 1e-6};
                    if (r >= 0) (f == ce ? ceTimes : cceTimes).add(times);
                }
            }
            if (Boolean.getBoolean("tally.profile")) { // -Dtally.profile=true: one more round of each with the per-op table
                for (LinearCrossEntropy f : new LinearCrossEntropy[] {ce, cce}) {
                    dev.tally.engine.profile.OpProfile p = new dev.tally.engine.profile.OpProfile();
                    try (AutoCloseable on = dev.tally.engine.Backends.profile(Device.CPU, p)) {
                        long w0 = System.nanoTime();
                        p.phase("forward");
                        Saved sv = f.forward(e, c, t, out, loss);
                        p.phase("backward");
                        f.backward(sv, dl, de, dc, loss);
                        p.addSteps(1, System.nanoTime() - w0);
                    } catch (Exception ex) {
                        throw new IllegalStateException(ex);
                    }
                    System.out.print((f == ce ? "CE " : "CCE ") + p.report(25));
                }
            }
            double ceWall = median(ceTimes, 0), cceWall = median(cceTimes, 0), ceCpu = median(ceTimes, 1), cceCpu = median(cceTimes, 1);
            double ceMin = min(ceTimes), cceMin = min(cceTimes);
            CutCrossEntropy.FilterStats fs = cce.filterStats();
            System.out.printf(Locale.ROOT, "%s N=%d D=%d V=%d: CE %.1f ms, CCE %.1f ms forward+backward (median of %d): CCE/CE %.2f wall, "
                            + "%.2f calling-thread CPU (%.0f / %.0f ms); fastest runs CE %.1f, CCE %.1f ms (%.2f, the figure a noisy "
                            + "machine disturbs least); CCE tiles %d, dE skipped %d, dC skipped %d; loss memory CE %d B, CCE %d B%n",
                    dt, n, d, v, ceWall, cceWall, reps, cceWall / ceWall, cceCpu / ceCpu, ceCpu, cceCpu, ceMin, cceMin, cceMin / ceMin,
                    fs.tiles(), fs.skippedE(), fs.skippedC(), ce.lossArenaBytes(n, d, v), cce.lossArenaBytes(n, d, v));
        }
    }

    private static double min(List<double[]> xs) {
        return xs.stream().mapToDouble(x -> x[0]).min().orElse(Double.NaN);
    }

    private static double median(List<double[]> xs, int i) {
        double[] v = xs.stream().mapToDouble(x -> x[i]).toArray();
        Arrays.sort(v);
        return v[v.length / 2];
    }
}
