package dev.tally.cli;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.data.TextData;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/**
 * {@code tally compare}: one ordinary {@code train} run per method, each in {@code OUT/<method>/} with its checkpoint —
 * same model and initial weights (one seed), same batches (a function of seed and step), same schedule — then a table
 * and two figures. Runs checkpoint every {@code --eval-every} steps, so an interrupted comparison resumes where it
 * stopped; a method whose checkpoint is at the last step is not run again. {@code OUT/compare.json} records the shared
 * settings and each {@code OUT/<method>/method.json} the method's hyperparameters: a rerun with different ones is
 * refused rather than mixing two experiments in one table.
 */
@Command(name = "compare", mixinStandardHelpOptions = true,
        description = "Train several optimizers under identical conditions; write compare.csv, compare.md, curves.png, memory-vs-perplexity.png.")
public final class CompareCommand implements Callable<Integer> {
    @Option(names = "--optimizers", split = ",", description = "Methods to compare (default: ${DEFAULT-VALUE}).")
    List<String> optimizers = List.of("adamw", "galore_adamw", "apollo", "apollo_mini");
    @Option(names = "--opt", description = "Per-method override method:key=value, repeatable (e.g. --opt apollo_mini:lr=0.02).")
    List<String> opts = new ArrayList<>();
    @Option(names = "--model", description = "Model config (default: ${DEFAULT-VALUE}).") String model = "tiny";
    @Option(names = "--loss", description = "ce, cce, cce_exact or cce_fused (default: ${DEFAULT-VALUE}).") String loss = "cce";
    @Option(names = "--dtype", description = "f32 or bf16 (default: ${DEFAULT-VALUE}).") String dtype = "f32";
    @Option(names = "--batch", description = "Sequences per batch (default: ${DEFAULT-VALUE}).") int batch = 8;
    @Option(names = "--seq", description = "Sequence length (default: ${DEFAULT-VALUE}).") int seq = 64;
    @Option(names = "--steps", description = "Optimizer steps per method (default: ${DEFAULT-VALUE}).") int steps = 300;
    @Option(names = "--warmup", description = "Warmup steps (default: 10% of steps).") Integer warmup;
    @Option(names = "--seed", description = "Seed of the weights and batches, shared by every method (default: ${DEFAULT-VALUE}).") long seed = 42;
    @Option(names = "--data", description = "Data as for train (default: the bundled corpus).") String data = TextData.BUNDLED;
    @Option(names = "--tokenizer", description = "byte or gpt2 (default: ${DEFAULT-VALUE}).") String tokenizer = "byte";
    @Option(names = "--eval-every", description = "Evaluate and checkpoint every N steps (default: ${DEFAULT-VALUE}).") int evalEvery = 25;
    @Option(names = "--eval-batches", description = "Held-out batches per evaluation (default: ${DEFAULT-VALUE}).") int evalBatches = 8;
    @Option(names = "--device", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).") String device = "auto";
    @Option(names = "--out", description = "Output folder (default: ${DEFAULT-VALUE}).") Path out = Path.of("runs", "compare");
    @Option(names = "--stop-at", description = "Stop every method at this step (checkpointed); rerun the same command to continue.") Integer stopAt;
    @Spec CommandSpec spec;

    /** One method's outcome, as the table prints it. */
    record Result(String method, Map<String, Object> hyper, double finalPpl, double bestPpl, double finalTrainLoss,
                  Map<MemoryCategory, Long> planned, double tokensPerSecond, double wallSeconds, boolean finished,
                  List<double[]> trainCurve, List<double[]> evalCurve) {
        long plannedTotal() { return planned.values().stream().mapToLong(Long::longValue).sum(); }
    }

    @Override public Integer call() throws Exception {
        LlamaConfig config = LlamaConfig.named(model);
        List<String> methods = new ArrayList<>();
        for (String m : optimizers) {
            String name = OptimizerKind.parse(m.trim()).userName();
            if (methods.contains(name)) throw new IllegalArgumentException("--optimizers lists " + name + " twice");
            methods.add(name);
        }
        Map<String, Map<String, Object>> overrides = ComparePresets.overrides(opts, methods);
        String command = "tally " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
        Files.createDirectories(out);
        checkSharedSettings();
        List<Result> results = new ArrayList<>();
        for (int i = 0; i < methods.size(); i++) {
            String m = methods.get(i);
            OptimizerKind kind = OptimizerKind.parse(m);
            Map<String, Object> hyper = new TreeMap<>(ComparePresets.preset(kind, config));
            hyper.putAll(overrides.getOrDefault(m, Map.of()));
            Path dir = out.resolve(m);
            System.out.printf("[%d/%d] %s %s%n", i + 1, methods.size(), m, Json.write(hyper));
            runMethod(m, hyper, dir);
            results.add(result(m, kind, config, hyper, dir));
        }
        CompareReport.write(out, results, command, seed, steps);
        System.out.printf("wrote %s: compare.csv, compare.md, curves.png, memory-vs-perplexity.png%n", out);
        System.out.print(CompareReport.markdownTable(results));
        return 0;
    }

    private Map<String, Object> sharedSettings() {
        Map<String, Object> m = new TreeMap<>();
        m.put("model", model);
        m.put("loss", loss);
        m.put("dtype", dtype);
        m.put("batch", (long) batch);
        m.put("seq", (long) seq);
        m.put("steps", (long) steps);
        m.put("warmup", (long) warmupSteps());
        m.put("seed", seed);
        m.put("data", data);
        m.put("tokenizer", tokenizer);
        m.put("eval_every", (long) evalEvery);
        m.put("eval_batches", (long) evalBatches);
        return m;
    }

    private int warmupSteps() { return warmup != null ? warmup : steps / 10; }

    private void checkSharedSettings() throws IOException {
        Path file = out.resolve("compare.json");
        String mine = Json.write(sharedSettings());
        if (Files.exists(file)) {
            String theirs = Files.readString(file).strip();
            if (!theirs.equals(mine)) {
                throw new IllegalArgumentException(out + " holds a comparison with other settings (" + theirs + "; now " + mine
                        + "): use another --out or delete it");
            }
        } else {
            Files.writeString(file, mine + "\n");
        }
    }

    private void runMethod(String method, Map<String, Object> hyper, Path dir) throws IOException {
        Files.createDirectories(dir);
        Path methodFile = dir.resolve("method.json"), ckpt = dir.resolve("checkpoint.safetensors"), wall = dir.resolve("wall_s");
        String mine = Json.write(hyper);
        if (Files.exists(methodFile) && !Files.readString(methodFile).strip().equals(mine)) {
            throw new IllegalArgumentException(dir + " was trained with " + Files.readString(methodFile).strip() + ", not " + mine
                    + ": use another --out or delete it");
        }
        Files.writeString(methodFile, mine + "\n");
        long at = Files.exists(ckpt) ? checkpointStep(ckpt) : 0;
        if (at >= steps) {
            System.out.printf("  finished earlier (step %d): not run again%n", at);
            return;
        }
        List<String> args = new ArrayList<>();
        if (at > 0) {
            System.out.printf("  resuming from step %d%n", at);
            args.addAll(List.of("--resume", ckpt.toString(), "--steps", Integer.toString(steps)));
        } else {
            args.addAll(List.of("--model", model, "--optimizer", method, "--lr", String.valueOf(hyper.get("lr")), "--loss", loss,
                    "--dtype", dtype, "--batch", Integer.toString(batch), "--seq", Integer.toString(seq), "--steps", Integer.toString(steps),
                    "--warmup", Integer.toString(warmupSteps()), "--seed", Long.toString(seed), "--data", data, "--tokenizer", tokenizer));
            hyper.forEach((k, v) -> args.addAll(List.of("--opt", k + "=" + (v instanceof List<?> l
                    ? String.join(",", l.stream().map(String::valueOf).toList()) : String.valueOf(v)))));
        }
        args.addAll(List.of("--out", dir.toString(), "--device", device, "--eval-every", Integer.toString(evalEvery),
                "--eval-batches", Integer.toString(evalBatches), "--checkpoint-every", Integer.toString(evalEvery), "--no-progress"));
        if (stopAt != null) args.addAll(List.of("--stop-at", Integer.toString(stopAt)));
        long t0 = System.nanoTime();
        CommandLine train = new CommandLine(new TrainCommand());
        train.setExecutionExceptionHandler((ex, cl, parsed) -> { throw ex; }); // the run's own error, not a second message
        int code = train.execute(args.toArray(String[]::new));
        if (code != 0) throw new IllegalStateException(method + ": train exited with " + code + " (" + String.join(" ", args) + ")");
        double before = Files.exists(wall) ? Double.parseDouble(Files.readString(wall).strip()) : 0;
        Files.writeString(wall, Double.toString(before + (System.nanoTime() - t0) * 1e-9) + "\n");
    }

    private static long checkpointStep(Path ckpt) throws IOException {
        try (SafeTensors.File f = SafeTensors.open(ckpt)) {
            return Long.parseLong(CheckpointModel.require(ckpt, f.metadata(), "step"));
        }
    }

    /** A method's figures from its metrics.jsonl (the last record of a step wins: a resumed run may repeat steps). */
    private Result result(String method, OptimizerKind kind, LlamaConfig config, Map<String, Object> hyper, Path dir) throws IOException {
        TreeMap<Long, Double> train = new TreeMap<>(), eval = new TreeMap<>();
        double tps = Double.NaN;
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            if (line.isBlank()) continue;
            Map<String, Object> r = Json.parseObject(line);
            long step = ((Number) r.get("step")).longValue();
            if (r.get("loss") instanceof Number l) train.put(step, l.doubleValue());
            if (r.get("eval_loss") instanceof Number l) eval.put(step, l.doubleValue());
            if (r.get("tokens_per_s") instanceof Number t) tps = t.doubleValue();
        }
        // records past the checkpoint come from a session that died before checkpointing again: they are not part of this run
        long at = checkpointStep(dir.resolve("checkpoint.safetensors"));
        train.tailMap(at, false).clear();
        eval.tailMap(at, false).clear();
        if (eval.isEmpty()) throw new IllegalStateException(dir + ": no held-out evaluation recorded");
        double best = eval.values().stream().mapToDouble(Math::exp).min().orElseThrow();
        List<double[]> trainCurve = train.entrySet().stream().map(e -> new double[] {e.getKey(), e.getValue()}).toList();
        List<double[]> evalCurve = eval.entrySet().stream().map(e -> new double[] {e.getKey(), Math.exp(e.getValue())}).toList();
        double wall = Files.exists(dir.resolve("wall_s")) ? Double.parseDouble(Files.readString(dir.resolve("wall_s")).strip()) : Double.NaN;
        return new Result(method, hyper, Math.exp(eval.lastEntry().getValue()), best, train.lastEntry().getValue(),
                planned(kind, config, hyper), tps, wall, at >= steps, trainCurve, evalCurve);
    }

    /** The run's memory plan by category, from the same code on META. */
    private Map<MemoryCategory, Long> planned(OptimizerKind kind, LlamaConfig config, Map<String, Object> hyper) {
        MemoryLedger ledger = new MemoryLedger();
        Trainer.Settings s = RunSetup.settings(config, DType.parse(dtype), batch, seq, 1, loss, false, Device.META, seed, 0);
        try (Trainer t = new Trainer(s, RunSetup.factory(kind, hyper), ledger)) {
            Map<MemoryCategory, Long> bytes = new EnumMap<>(MemoryCategory.class);
            for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, ledger.entry(Device.META, c).capacity());
            return bytes;
        }
    }
}
