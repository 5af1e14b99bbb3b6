package dev.tally.engine.cpu;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * CPU fp32 matmul throughput: C[M, N] = A[M, K] · B[K, N] (+ C), F32, on one thread and on all threads, after a warm-up,
 * reporting the median of several repetitions. The shapes are the two square ones the README quotes, or any list of
 * {@link Case}s ({@link #TRAINING}: the products a llama_20m training step runs). Run with
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp engine/target/classes dev.tally.engine.cpu.MatmulBenchmark [reps] [cases|training]}
 * or {@code tally bench --matmul [--matmul-shapes training]}.
 */
public final class MatmulBenchmark {
    private MatmulBenchmark() {}

    /**
     * One product as the profile prints it: {@code batch} independent products of M×N×K, A and/or B a transposed view
     * (T: the operand is stored the other way round, as {@code x.t()}), and {@code accumulate} for C += A·B (beta = 1).
     * Written {@code [B*]OP:MxNxK[:acc]}, e.g. {@code NT:1024x32000x256}, {@code 16*TN:256x64x256:acc}.
     */
    public record Case(int batch, boolean transA, boolean transB, int m, int n, int k, boolean accumulate) {
        public Case {
            if (batch < 1 || m < 1 || n < 1 || k < 1) throw new IllegalArgumentException("matmul case needs positive sizes: " + this);
        }

        public static Case square(int m, int n, int k) { return new Case(1, false, false, m, n, k, false); }

        /** Parses {@code [B*]OP:MxNxK[:acc]} (OP one of NN, NT, TN, TT); the error names the text and the expected form. */
        public static Case parse(String text) {
            String s = text.strip();
            try {
                int batch = 1;
                int star = s.indexOf('*');
                if (star >= 0) {
                    batch = Integer.parseInt(s.substring(0, star));
                    s = s.substring(star + 1);
                }
                String[] parts = s.split(":");
                if (parts.length < 2 || parts.length > 3 || !parts[0].matches("[NT][NT]")) throw new IllegalArgumentException();
                boolean acc = parts.length == 3;
                if (acc && !parts[2].equals("acc")) throw new IllegalArgumentException();
                String[] dims = parts[1].split("x");
                if (dims.length != 3) throw new IllegalArgumentException();
                return new Case(batch, parts[0].charAt(0) == 'T', parts[0].charAt(1) == 'T', Integer.parseInt(dims[0]),
                        Integer.parseInt(dims[1]), Integer.parseInt(dims[2]), acc);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("matmul shape '" + text + "': expected [B*]OP:MxNxK[:acc], OP one of NN NT TN TT, "
                        + "e.g. NT:1024x32000x256 or 16*TN:256x64x256:acc", e);
            }
        }

        /** Comma-separated {@link #parse} cases, or {@code training} for {@link #TRAINING}, {@code square} for the README's two. */
        public static List<Case> parseList(String text) {
            List<Case> out = new ArrayList<>();
            for (String item : text.split(",")) {
                switch (item.strip()) {
                    case "training" -> out.addAll(TRAINING);
                    case "square" -> out.addAll(SQUARE);
                    default -> out.add(parse(item));
                }
            }
            return out;
        }

        public double flops() { return 2.0 * batch * m * n * k; }

        @Override public String toString() {
            return (batch > 1 ? batch + "*" : "") + (transA ? "T" : "N") + (transB ? "T" : "N") + ":" + m + "x" + n + "x" + k
                    + (accumulate ? ":acc" : "");
        }
    }

    /** The README's square shapes. */
    public static final List<Case> SQUARE = List.of(Case.square(1024, 1024, 1024), Case.square(4096, 4096, 1024));

    /**
     * The products of a llama_20m training step at batch 4 × seq 256 (1024 tokens, hidden 256, intermediate 688, 4 heads
     * of 64, vocabulary 32000), in the order of the profile's time share: the loss head, the layers' linears, the attention
     * heads, and the Cut Cross-Entropy tiles (its default tile sizes at the time of writing).
     */
    public static final List<Case> TRAINING = List.of(
            Case.parse("NN:1024x256x32000"), Case.parse("TN:32000x256x1024"), Case.parse("NT:1024x32000x256"),
            Case.parse("NT:1024x256x256"), Case.parse("TN:256x256x1024:acc"), Case.parse("NN:1024x256x256:acc"),
            Case.parse("NT:1024x688x256"), Case.parse("NT:1024x256x688"), Case.parse("NN:1024x256x688:acc"),
            Case.parse("TN:688x256x1024:acc"), Case.parse("TN:256x688x1024:acc"),
            Case.parse("16*NT:256x256x64"), Case.parse("16*NN:256x64x256"), Case.parse("16*TN:256x64x256:acc"),
            Case.parse("NT:512x256x256"), Case.parse("NN:512x256x256:acc"), Case.parse("TN:256x256x512:acc"),
            Case.parse("NN:1x256x512"));

    /** One measured configuration. */
    public record Result(Case shape, int threads, double medianSeconds, double gflops, double cpuGflops) {
        public int m() { return shape.m(); }
        public int n() { return shape.n(); }
        public int k() { return shape.k(); }

        @Override public String toString() {
            String cpu = threads == 1 ? String.format(Locale.ROOT, " (%.1f GFLOP/s per CPU-second of the thread)", cpuGflops) : "";
            return String.format(Locale.ROOT, "%-22s threads=%d: median %8.3f ms, %6.1f GFLOP/s%s", shape, threads,
                    medianSeconds * 1e3, gflops, cpu);
        }
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        List<Case> cases = args.length > 1 ? Case.parseList(args[1]) : SQUARE;
        int[] threadCounts = args.length > 2 ? Arrays.stream(args[2].split(",")).mapToInt(Integer::parseInt).toArray()
                : new int[] {1, CpuThreads.count()};
        System.out.println("tally cpu matmul benchmark (fp32, vector species " + Gemm.S + ", micro-tile " + Gemm.MR + "x" + Gemm.NR
                + ", " + CpuThreads.count() + " threads available)");
        for (Case c : cases) {
            for (int threads : threadCounts) System.out.println(measure(c, threads, reps));
        }
    }

    /** Times C = A·B for the given sizes and thread count; the median over {@code reps} runs after warm-up. */
    public static Result measure(int m, int n, int k, int threads, int reps) {
        return measure(Case.square(m, n, k), threads, reps);
    }

    /** Times one case on {@code threads} threads; the median over {@code reps} runs after warm-up. */
    public static Result measure(Case s, int threads, int reps) {
        MemoryLedger ledger = new MemoryLedger();
        long bytes = 4L * s.batch() * ((long) s.m() * s.k() + (long) s.k() * s.n() + (long) s.m() * s.n()) + 3 * MemoryArena.ALIGNMENT;
        try (MemoryArena arena = new MemoryArena(ledger, "matmul-benchmark", MemoryCategory.WORKSPACE, Device.CPU, bytes)) {
            Tensor a = s.transA() ? arena.allocate("a", DType.F32, s.batch(), s.k(), s.m()).t() : arena.allocate("a", DType.F32, s.batch(), s.m(), s.k());
            Tensor b = s.transB() ? arena.allocate("b", DType.F32, s.batch(), s.n(), s.k()).t() : arena.allocate("b", DType.F32, s.batch(), s.k(), s.n());
            Tensor c = arena.allocate("c", DType.F32, s.batch(), s.m(), s.n());
            SplittableRandom r = new SplittableRandom(1);
            fill(a, r);
            fill(b, r);
            fill(c, r);
            double beta = s.accumulate() ? 1 : 0;
            // the accumulating cases add into C every call: a small alpha keeps C far from overflow over all calls
            double alpha = s.accumulate() ? 1e-6 : 1;
            // warm-up: at least 1.5 s of calls, and on until a call is within 25 % of the fastest yet (the interpreter's and
            // C1's Vector API fallback is many times slower: on a loaded machine C2 can take longer than 1.5 s to arrive)
            long start = System.nanoTime(), best = Long.MAX_VALUE, last = Long.MAX_VALUE;
            int warm = 0;
            while (warm < 3 || System.nanoTime() - start < 1_500_000_000L
                    || (last > best * 1.25 && System.nanoTime() - start < 15_000_000_000L)) {
                long t0 = System.nanoTime();
                Matmul.matmul(a, b, c, alpha, beta, threads);
                last = System.nanoTime() - t0;
                best = Math.min(best, last);
                warm++;
            }
            // small products are timed in runs of calls (~0.5 GFLOP a repetition): one call is too short for the clocks
            int calls = (int) Math.max(1, Math.min(100_000, 5e8 / s.flops()));
            double[] t = new double[reps], cpu = new double[reps];
            var mx = java.lang.management.ManagementFactory.getThreadMXBean();
            for (int i = 0; i < reps; i++) {
                long c0 = mx.getCurrentThreadCpuTime();
                long t0 = System.nanoTime();
                for (int call = 0; call < calls; call++) Matmul.matmul(a, b, c, alpha, beta, threads);
                t[i] = (System.nanoTime() - t0) * 1e-9 / calls;
                cpu[i] = (mx.getCurrentThreadCpuTime() - c0) * 1e-9 / calls;
            }
            Arrays.sort(t);
            Arrays.sort(cpu);
            double med = t[reps / 2];
            // CPU time of the calling thread: with one thread, the throughput of the core while it was not preempted
            return new Result(s, threads, med, s.flops() / med * 1e-9, s.flops() / cpu[reps / 2] * 1e-9);
        }
    }

    private static void fill(Tensor t, SplittableRandom r) {
        var seg = t.segment();
        long n = seg.byteSize() / 4;
        for (long i = 0; i < n; i++) seg.setAtIndex(Buf.F, i, (float) (r.nextDouble() - 0.5));
    }
}
