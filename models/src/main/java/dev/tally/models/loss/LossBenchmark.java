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
 * initialisation, targets uniform), round-robin over the losses, median wall time and median CPU time of the calling
 * thread, the fastest run, and the median of each round's ratio to the CE run just before it (the last three less
 * disturbed by other processes on a shared machine: a co-tenant's load changes slowly against one round), with each
 * CCE's filter statistics and booked loss memory. Run with
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp engine/target/classes:models/target/classes dev.tally.models.loss.LossBenchmark [reps] [f32|bf16] [losses]};
 * {@code -Dtally.cpu.threads=1} measures one thread. A second argument {@code bf16} runs the inputs in bf16, as bf16 training
 * does (CCE's filter then skips tiles at the reference's bf16 threshold); the third names the losses compared with CE
 * (default {@code cce,cce_fused}).
 */
public final class LossBenchmark {
    private LossBenchmark() {}

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        DType dt = args.length > 1 ? DType.parse(args[1]) : DType.F32;
        List<String> names = new ArrayList<>(List.of("ce"));
        names.addAll(List.of((args.length > 2 ? args[2] : "cce,cce_fused").split(",")));
        for (int[] s : new int[][] {{2048, 256, 8192}, {1024, 256, 32000}}) run(s[0], s[1], s[2], reps, dt, names);
    }

    /** One shape: hidden states, classifier and their gradients in {@code dt} (F32, or BF16 as in bf16 training); CE first. */
    static void run(int n, int d, int v, int reps, DType dt, List<String> names) {
        MemoryLedger ledger = new MemoryLedger();
        List<LinearCrossEntropy> losses = names.stream().map(LinearCrossEntropy::named).toList();
        long lossBytes = losses.stream().mapToLong(f -> f.lossArenaBytes(n, d, v)).max().orElseThrow();
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
            List<List<double[]>> times = new ArrayList<>();
            for (int i = 0; i < losses.size(); i++) times.add(new ArrayList<>());
            for (int r = -2; r < reps; r++) { // two untimed rounds for the JIT
                for (int i = 0; i < losses.size(); i++) {
                    LinearCrossEntropy f = losses.get(i);
                    long w0 = System.nanoTime(), c0 = mx.getCurrentThreadCpuTime();
                    f.backward(f.forward(e, c, t, out, loss), dl, de, dc, loss);
                    if (r >= 0) times.get(i).add(new double[] {(System.nanoTime() - w0) * 1e-6, (mx.getCurrentThreadCpuTime() - c0) * 1e-6});
                }
            }
            if (Boolean.getBoolean("tally.profile")) { // -Dtally.profile=true: one more round of each with the per-op table
                for (int i = 0; i < losses.size(); i++) {
                    LinearCrossEntropy f = losses.get(i);
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
                    System.out.print(names.get(i) + " " + p.report(25));
                }
            }
            double ceWall = median(times.get(0), 0), ceCpu = median(times.get(0), 1), ceMin = min(times.get(0));
            List<double[]> ceRuns = times.get(0);
            System.out.printf(Locale.ROOT, "%s N=%d D=%d V=%d, forward+backward, median of %d: ce %.1f ms (calling-thread CPU %.0f ms, "
                    + "fastest %.1f), loss memory %d B%n", dt, n, d, v, reps, ceWall, ceCpu, ceMin, losses.get(0).lossArenaBytes(n, d, v));
            for (int i = 1; i < losses.size(); i++) {
                double wall = median(times.get(i), 0), cpu = median(times.get(i), 1), fastest = min(times.get(i));
                List<double[]> runs = times.get(i), paired = new ArrayList<>();
                for (int r = 0; r < runs.size(); r++) paired.add(new double[] {runs.get(r)[0] / ceRuns.get(r)[0]});
                String filter = losses.get(i) instanceof CutCrossEntropy cce
                        ? String.format(Locale.ROOT, "; tiles %d, dE skipped %d, dC skipped %d", cce.filterStats().tiles(),
                                cce.filterStats().skippedE(), cce.filterStats().skippedC()) : "";
                System.out.printf(Locale.ROOT, "  %-10s %.1f ms: /ce %.2f wall, %.2f calling-thread CPU, %.2f fastest runs, %.2f median of the "
                                + "rounds' ratios (the last two the figures a noisy machine disturbs least)%s; loss memory %d B%n", names.get(i), wall,
                        wall / ceWall, cpu / ceCpu, fastest / ceMin, median(paired, 0), filter, losses.get(i).lossArenaBytes(n, d, v));
            }
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
