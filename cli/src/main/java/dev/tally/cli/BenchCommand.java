package dev.tally.cli;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.cpu.MatmulBenchmark;
import dev.tally.engine.io.Json;
import dev.tally.engine.profile.OpProfile;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.loss.CutCrossEntropy;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/** {@code tally bench}: tokens/s, step time and peak memory per optimizer × loss on the current device, as JSON. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Throughput and memory per optimizer × loss (JSON).")
public final class BenchCommand implements Callable<Integer> {
    @Option(names = "--model", description = "Config (default: ${DEFAULT-VALUE}).") String model = "tiny";
    @Option(names = "--optimizers", split = ",", description = "Optimizers (default: ${DEFAULT-VALUE}).")
    List<String> optimizers = List.of("adamw", "apollo_mini", "galore_adamw");
    @Option(names = "--loss", split = ",", description = "Losses (default: ${DEFAULT-VALUE}).") List<String> losses = List.of("ce", "cce");
    @Option(names = "--dtype", description = "f32 or bf16 (default: ${DEFAULT-VALUE}).") String dtype = "f32";
    @Option(names = "--batch", description = "(default: ${DEFAULT-VALUE})") int batch = 8;
    @Option(names = "--seq", description = "(default: ${DEFAULT-VALUE})") int seq = 64;
    @Option(names = "--steps", description = "Timed steps (default: ${DEFAULT-VALUE}).") int steps = 20;
    @Option(names = "--warmup-steps", description = "Untimed steps first, so the JIT has compiled the kernels (default: ${DEFAULT-VALUE}).") int warmupSteps = 10;
    @Option(names = "--device", description = "(default: ${DEFAULT-VALUE})") String device = "auto";
    @Option(names = "--matmul", description = "Also run the CPU fp32 GEMM benchmark.") boolean matmul;
    @Option(names = "--matmul-shapes", description = "GEMM shapes for --matmul (implies it): 'square' (the default: 1024^3, "
            + "4096x4096x1024), 'training' (the products of a llama_20m step), or a comma list of [B*]OP:MxNxK[:acc], "
            + "e.g. NT:1024x32000x256,16*TN:256x64x256:acc.") String matmulShapes;
    @Option(names = "--matmul-only", description = "Run only the GEMM benchmark, no training.") boolean matmulOnly;
    @Option(names = "--out", description = "Also write the JSON here.") Path out;
    @Option(names = "--profile", description = "After the timed steps, run --profile-steps more with every op timed and print "
            + "a per-op table (time, calls, bytes, GFLOP/s per phase and op kind) to stderr. The timed figures are not affected.")
    boolean profile;
    @Option(names = "--profile-steps", description = "Steps profiled with --profile (default: ${DEFAULT-VALUE}).") int profileSteps = 2;

    @Override public Integer call() throws Exception {
        if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1 (timed steps), got " + steps);
        if (warmupSteps < 0) throw new IllegalArgumentException("--warmup-steps must be >= 0, got " + warmupSteps);
        if (batch < 1 || seq < 1) throw new IllegalArgumentException("--batch and --seq must be >= 1, got " + batch + " and " + seq);
        if ((long) batch * seq > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("--batch " + batch + " x --seq " + seq + " exceeds " + Integer.MAX_VALUE + " tokens");
        }
        if (optimizers.isEmpty() || losses.isEmpty()) throw new IllegalArgumentException("--optimizers and --loss need at least one name");
        List<MatmulBenchmark.Case> shapes = MatmulBenchmark.Case.parseList(matmulShapes == null ? "square" : matmulShapes);
        boolean gemm = matmul || matmulShapes != null || matmulOnly;
        Map<String, Object> report = new LinkedHashMap<>();
        if (!matmulOnly) {
            Device d = Backends.resolve(device);
            LlamaConfig c = LlamaConfig.named(model);
            List<Object> results = new ArrayList<>();
            SplittableRandom r = new SplittableRandom(1);
            // a throwaway pass of the first configuration, so JIT compilation of the shared code is not billed to it
            measure(c, d, OptimizerKind.parse(optimizers.get(0)), losses.get(0), new SplittableRandom(0), null);
            for (String o : optimizers) {
                OptimizerKind kind = OptimizerKind.parse(o);
                for (String l : losses) measure(c, d, kind, l, r, results);
            }
            report.put("training", results);
        }
        if (gemm) {
            List<Object> mm = new ArrayList<>();
            for (MatmulBenchmark.Case sz : shapes) {
                for (int threads : new int[] {1, Runtime.getRuntime().availableProcessors()}) {
                    MatmulBenchmark.Result res = MatmulBenchmark.measure(sz, threads, 5);
                    System.err.println(res); // the readable line as each shape finishes; the JSON comes at the end
                    Map<String, Object> e = new LinkedHashMap<>();
                    e.put("shape", sz.toString());
                    e.put("m", (long) sz.m());
                    e.put("n", (long) sz.n());
                    e.put("k", (long) sz.k());
                    e.put("threads", (long) threads);
                    e.put("gflops", res.gflops());
                    mm.add(e);
                }
            }
            report.put("cpu_matmul_fp32", mm);
        }
        String json = Json.write(report);
        System.out.println(json);
        if (out != null) Files.writeString(out, json + "\n");
        return 0;
    }

    private void measure(LlamaConfig c, Device d, OptimizerKind kind, String l, SplittableRandom r, List<Object> results) {
                MemoryLedger ledger = new MemoryLedger();
        Trainer.Settings s = RunSetup.settings(c, DType.parse(dtype), batch, seq, 1, l, false, d, 0, 0);
        try (Trainer t = new Trainer(s, RunSetup.factory(kind, RunSetup.hyper(kind, c, MemtableCommand.defaultsFor(kind))), ledger)) {
            long[] ids = new long[batch * seq], tg = new long[batch * seq];
            // tokens and targets uniform over the whole vocabulary: targets drawn from a few classes would let CCE's
            // filter (bf16) skip every vocabulary tile that holds none of them, a speed that initialisation on real text
            // (hundreds of distinct targets spread over every tile) does not give
            for (int i = 0; i < ids.length; i++) {
                ids[i] = r.nextInt(c.vocab());
                tg[i] = r.nextInt(c.vocab());
            }
            for (int w = 0; w < warmupSteps; w++) t.step(new long[][] {ids}, new long[][] {tg}, 1.0);
            long t0 = System.nanoTime();
            for (int k = 0; k < steps; k++) t.step(new long[][] {ids}, new long[][] {tg}, 1.0);
            double secs = (System.nanoTime() - t0) * 1e-9;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", c.name());
            m.put("optimizer", kind.userName());
            m.put("loss", l);
            m.put("device", d.toString());
            m.put("tokens_per_s", (double) steps * batch * seq / secs);
            m.put("step_ms", secs * 1e3 / steps);
            Map<String, Object> mem = new LinkedHashMap<>();
            for (MemoryCategory cat : MemoryCategory.values()) {
                long b = ledger.entry(d, cat).peak();
                if (b > 0) mem.put(cat.label(), b);
            }
            m.put("peak_bytes", mem);
            m.put("peak_total_bytes", ledger.totalPeak(d));
            if (t.lossFunction() instanceof CutCrossEntropy cce) {
                // of the last step's backward: (row block x vocabulary tile) tiles visited, and how many skipped the
                // dE / dC products because every |softmax - onehot| entry was below the filter threshold
                CutCrossEntropy.FilterStats fs = cce.filterStats();
                m.put("cce_tiles", fs.tiles());
                m.put("cce_skipped_dE", fs.skippedE());
                m.put("cce_skipped_dC", fs.skippedC());
            }
            if (profile && results != null) {
                OpProfile p = new OpProfile();
                t.setProfile(p);
                try (AutoCloseable on = Backends.profile(d, p)) {
                    long p0 = System.nanoTime();
                    for (int k = 0; k < profileSteps; k++) t.step(new long[][] {ids}, new long[][] {tg}, 1.0);
                    p.addSteps(profileSteps, System.nanoTime() - p0);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
                t.setProfile(null);
                double lossNanos = p.entries().stream().filter(e -> e.phase.startsWith("loss")).mapToLong(OpProfile.Entry::nanos).sum();
                m.put("profiled_loss_ms", lossNanos / 1e6 / profileSteps);
                System.err.printf("%s, %s + %s, batch %d x seq %d:%n%s%n", c.name(), kind.userName(), l, batch, seq, p.report(40));
            }
            if (results != null) results.add(m);
                }
    }
}
