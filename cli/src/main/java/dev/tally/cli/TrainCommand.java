package dev.tally.cli;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.LrSchedule;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedWriter;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code tally train}: prints the memory plan, refuses one that does not fit, trains, evaluates, checkpoints, plots. */
@Command(name = "train", mixinStandardHelpOptions = true, description = "Train a LLaMA-style model (default: tiny, APOLLO-Mini + CCE, bundled corpus).")
public final class TrainCommand implements Callable<Integer> {
    @Option(names = "--model", description = "Paper config name (llama_9m ... llama_7b), tiny, small, or a JSON file (default: ${DEFAULT-VALUE}).")
    String model = "tiny";
    @Option(names = "--optimizer", description = "adamw, adafactor, came, adamw8bit, galore_adamw, galore_adafactor, galore_adamw8bit, apollo, apollo_mini, q_apollo, q_apollo_mini, q_galore_adamw8bit (default: apollo_mini; q_apollo_mini with --weight-bits 8).")
    String optimizer;
    @Option(names = "--opt", description = "Optimizer hyperparameter key=value, repeatable (e.g. --opt lr=0.01 --opt betas=0.9,0.95).")
    List<String> opts = new ArrayList<>();
    @Option(names = "--lr", description = "Peak learning rate (default: ${DEFAULT-VALUE}).") double lr = 0.01;
    @Option(names = "--loss", description = "ce, cce or cce_exact (default: ${DEFAULT-VALUE}).") String loss = "cce";
    @Option(names = "--dtype", description = "f32 or bf16 (default: ${DEFAULT-VALUE}).") String dtype = "f32";
    @Option(names = "--batch", description = "Sequences per micro-batch (default: ${DEFAULT-VALUE}).") int batch = 8;
    @Option(names = "--seq", description = "Sequence length (default: ${DEFAULT-VALUE}).") int seq = 64;
    @Option(names = "--accum", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).") int accum = 1;
    @Option(names = "--steps", description = "Optimizer steps (default: ${DEFAULT-VALUE}).") int steps = 300;
    @Option(names = "--warmup", description = "Warmup steps (default: 10% of steps).") Integer warmup;
    @Option(names = "--min-lr-ratio", description = "Cosine floor as a fraction of the peak (default: ${DEFAULT-VALUE}).") double minLrRatio = 0.1;
    @Option(names = "--clip", description = "Clip gradients to this global norm; 0 = off (default: ${DEFAULT-VALUE}).") double clip = 0;
    @Option(names = "--layerwise", description = "Update each weight in backward and free its gradient at once.") boolean layerwise;
    @Option(names = "--weight-bits", description = "16 (linear weights in the model dtype) or 8 (int8 attention/MLP weights; needs q_apollo, q_apollo_mini or q_galore_adamw8bit) (default: ${DEFAULT-VALUE}).")
    int weightBits = 16;
    @Option(names = "--weight-group", description = "Elements per scale and zero point of int8 weights, 128 or 256 (default: ${DEFAULT-VALUE}).")
    int weightGroup = 256;
    @Option(names = "--device", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).") String device = "auto";
    @Option(names = "--seed", description = "Seed for weights and batches (default: ${DEFAULT-VALUE}).") long seed = 42;
    @Option(names = "--data", description = "Text file or folder of .txt/.md files (default: the bundled Devil's Dictionary).") String data = TextData.BUNDLED;
    @Option(names = "--tokenizer", description = "byte or gpt2 (default: ${DEFAULT-VALUE}).") String tokenizer = "byte";
    @Option(names = "--eval-every", description = "Evaluate every N steps (default: ${DEFAULT-VALUE}).") int evalEvery = 100;
    @Option(names = "--eval-batches", description = "Held-out batches per evaluation (default: ${DEFAULT-VALUE}).") int evalBatches = 8;
    @Option(names = "--checkpoint-every", description = "Checkpoint every N steps; 0 = only at the end (default: ${DEFAULT-VALUE}).") int checkpointEvery = 0;
    @Option(names = "--out", description = "Output folder (default: ${DEFAULT-VALUE}).") Path out = Path.of("runs", "latest");
    @Option(names = "--resume", description = "Continue from a checkpoint (its settings are used; --steps may extend the run).") Path resume;
    @Option(names = "--stop-at", description = "End after this step, checkpointing, while the schedule still spans --steps (a time-boxed session; continue with --resume).")
    Integer stopAt;
    @Option(names = "--no-progress", description = "Print a line every few steps instead of a progress bar.") boolean noProgress;

    private final PrintStream outStream = System.out;

    @Override public Integer call() throws Exception {
        Map<String, String> settings;
        long startStep = 0;
        SafeTensors.File ckpt = null;
        if (resume != null) {
            ckpt = SafeTensors.open(resume);
            settings = new LinkedHashMap<>(ckpt.metadata());
            applySettings(settings);
            startStep = Long.parseLong(settings.get("step"));
        }
        if (optimizer == null) optimizer = weightBits == 8 ? "q_apollo_mini" : "apollo_mini";
        OptimizerKind kind = OptimizerKind.parse(optimizer);
        LlamaConfig config = LlamaConfig.named(model);
        DType dt = DType.parse(dtype);
        Map<String, Object> given = Optimizers.parseAssignments(opts);
        given.putIfAbsent("lr", kind == OptimizerKind.ADAFACTOR || kind == OptimizerKind.GALORE_ADAFACTOR ? null : lr);
        if ((kind == OptimizerKind.ADAFACTOR || kind == OptimizerKind.GALORE_ADAFACTOR) && given.get("lr") == null) {
            given.put("lr", lr);
            given.putIfAbsent("relative_step", false);
            given.putIfAbsent("scale_parameter", false);
        }
        Map<String, Object> hyper = RunSetup.hyper(kind, config, given);
        Tokenizer tok = Tokenizer.named(tokenizer);
        if (tok.vocabSize() > config.vocab()) {
            throw new IllegalArgumentException("tokenizer " + tok.name() + " has " + tok.vocabSize() + " tokens but model " + config.name()
                    + " only " + config.vocab() + " embeddings");
        }
        TextData text = TextData.load(data, tok, 0.05);
        int warm = warmup != null ? warmup : steps / 10;
        LrSchedule schedule = new LrSchedule(Math.min(warm, steps), Math.max(1, steps), minLrRatio);
        Device dev = Backends.resolve(device);
        Trainer.Settings ts = RunSetup.settings(config, dt, batch, seq, accum, loss, layerwise, dev, seed, clip)
                .withWeights(RunSetup.weightFormat(weightBits, weightGroup));

        // 1. the plan, from the same code on META, before any memory is taken (the run below reuses it: no second pass)
        Trainer.Plan plan = Trainer.plan(ts, RunSetup.factory(kind, hyper));
        outStream.print(plan.report());
        long planned = plan.totalBytes();
        long available = availableBytes(dev);
        if (planned > available) {
            throw new IllegalStateException(String.format("the plan needs %,d B (%s) but %s has %,d B (%s) available: use a smaller model,"
                    + " batch or sequence, CCE, or a lighter optimizer", planned, MemoryLedger.human(planned), dev, available,
                    MemoryLedger.human(available)));
        }
        outStream.printf("data: %s, %s tokenizer, %,d training / %,d held-out tokens%n", text.source(), tok.name(), text.trainTokens(), text.evalTokens());

        // 2. the run
        Files.createDirectories(out);
        MemoryLedger ledger = new MemoryLedger();
        Map<String, String> meta = metadata(config, hyper);
        List<Integer> xs = new ArrayList<>(), evalX = new ArrayList<>();
        List<Double> ys = new ArrayList<>(), evalY = new ArrayList<>();
        try (Trainer t = new Trainer(plan, ledger);
             BufferedWriter metrics = Files.newBufferedWriter(out.resolve("metrics.jsonl"), StandardOpenOption.CREATE,
                     resume != null ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            if (ckpt != null) {
                Checkpoint.load(ckpt, t);
                ckpt.close();
                outStream.printf("resumed from %s at step %d%n", resume, startStep);
            }
            long t0 = System.nanoTime();
            long tokens = 0;
            boolean bar = !noProgress && System.console() != null;
            try (ProgressBar pb = bar ? new ProgressBarBuilder().setTaskName("train").setInitialMax(steps).startsFrom(startStep, java.time.Duration.ZERO)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).build() : null) {
                long end = stopAt != null ? Math.min(steps, stopAt) : steps;
                for (long step = startStep; step < end; step++) {
                    long[][] in = new long[accum][], tg = new long[accum][];
                    for (int k = 0; k < accum; k++) {
                        long[][] b = text.trainBatch(seed, step * accum + k, batch, seq);
                        in[k] = b[0];
                        tg[k] = b[1];
                    }
                    double factor = schedule.factor((int) step);
                    double l = t.step(in, tg, factor);
                    double usedLr = t.lastLearningRates()[0]; // what the optimizer used (--opt lr=… included), not --lr
                    if (!Double.isFinite(l)) throw new IllegalStateException("loss became " + l + " at step " + step + " (try a lower --lr)");
                    tokens += (long) accum * batch * seq;
                    double secs = (System.nanoTime() - t0) * 1e-9;
                    double tps = tokens / secs;
                    xs.add((int) step + 1);
                    ys.add(l);
                    metrics.write(Json.write(Map.of("step", step + 1, "loss", l, "lr", usedLr, "tokens_per_s", tps, "elapsed_s", secs)));
                    metrics.newLine();
                    if (pb != null) {
                        pb.stepTo(step + 1);
                        pb.setExtraMessage(String.format("loss %.4f  %.0f tok/s  lr %.2e", l, tps, usedLr));
                    } else if ((step + 1) % 10 == 0 || step + 1 == steps) {
                        long remaining = (long) ((steps - step - 1) * secs / (step + 1 - startStep));
                        outStream.printf("step %5d/%d  loss %.4f  %7.0f tok/s  lr %.2e  ETA %ds%n", step + 1, steps, l, tps, usedLr, remaining);
                    }
                    boolean last = step + 1 == end;
                    if ((step + 1) % evalEvery == 0 || last) {
                        double ev = evaluate(t, text);
                        evalX.add((int) step + 1);
                        evalY.add(ev);
                        metrics.write(Json.write(Map.of("step", step + 1, "eval_loss", ev, "eval_ppl", Math.exp(ev))));
                        metrics.newLine();
                        if (pb == null) outStream.printf("step %5d  held-out loss %.4f  perplexity %.2f%n", step + 1, ev, Math.exp(ev));
                    }
                    if ((checkpointEvery > 0 && (step + 1) % checkpointEvery == 0) || last) {
                        Checkpoint.save(out.resolve("checkpoint.safetensors"), t, meta, step + 1);
                    }
                    metrics.flush();
                }
            }
            if (!evalY.isEmpty()) outStream.printf("final held-out loss %.4f, perplexity %.2f%n", evalY.getLast(), Math.exp(evalY.getLast()));
            outStream.printf("measured: activations high-water %,d B = plan %,d B%n", t.activationArena().highWater(), t.activationPlan().size());
            if (!xs.isEmpty()) Plots.lossCurve(out.resolve("loss.png"), xs, ys, evalX, evalY, config.name() + " · " + kind.userName() + " · " + loss);
            Map<MemoryCategory, Long> bytes = new EnumMap<>(MemoryCategory.class);
            for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, ledger.entry(dev, c).capacity());
            Plots.memoryBars(out.resolve("memory.png"), "memory by category: " + config.name() + " · " + kind.userName(),
                    List.of(config.name()), Map.of(config.name(), bytes));
            outStream.println("wrote " + out.resolve("metrics.jsonl") + ", loss.png, memory.png, checkpoint.safetensors");
        }
        return 0;
    }

    /**
     * Held-out loss: token-weighted mean over the evaluation batches (every batch has the same token count here, so
     * this equals the mean of batch losses). The reference divides the summed batch losses by (n + 1), a small
     * systematic underestimate; Tally divides by n.
     */
    private double evaluate(Trainer t, TextData text) {
        double sum = 0;
        List<long[][]> batches = text.evalBatches(batch, seq, evalBatches);
        for (long[][] b : batches) sum += t.evaluate(b[0], b[1]);
        return sum / batches.size();
    }

    private Map<String, String> metadata(LlamaConfig config, Map<String, Object> hyper) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("model", model);
        m.put("optimizer", optimizer);
        m.put("hparams", Json.write(new java.util.TreeMap<>(hyper)));
        m.put("lr", Double.toString(lr));
        m.put("loss", loss);
        m.put("dtype", dtype);
        m.put("batch", Integer.toString(batch));
        m.put("seq", Integer.toString(seq));
        m.put("accum", Integer.toString(accum));
        m.put("steps", Integer.toString(steps));
        m.put("warmup", Integer.toString(warmup != null ? warmup : steps / 10));
        m.put("min_lr_ratio", Double.toString(minLrRatio));
        m.put("clip", Double.toString(clip));
        m.put("layerwise", Boolean.toString(layerwise));
        m.put("weight_bits", Integer.toString(weightBits));
        m.put("weight_group", Integer.toString(weightGroup));
        m.put("seed", Long.toString(seed));
        m.put("data", data);
        m.put("tokenizer", tokenizer);
        return m;
    }

    /** Resuming: the checkpoint's settings win (the same run continues); --steps may extend it. */
    private void applySettings(Map<String, String> m) {
        int requestedSteps = steps;
        model = req(m, "model");
        optimizer = req(m, "optimizer");
        opts = new ArrayList<>();
        Json.parseObject(req(m, "hparams")).forEach((k, v) -> opts.add(k + "=" + (v instanceof List<?> l
                ? String.join(",", l.stream().map(String::valueOf).toList()) : String.valueOf(v))));
        lr = Double.parseDouble(req(m, "lr"));
        loss = req(m, "loss");
        dtype = req(m, "dtype");
        batch = Integer.parseInt(req(m, "batch"));
        seq = Integer.parseInt(req(m, "seq"));
        accum = Integer.parseInt(req(m, "accum"));
        warmup = Integer.parseInt(req(m, "warmup"));
        minLrRatio = Double.parseDouble(req(m, "min_lr_ratio"));
        clip = Double.parseDouble(req(m, "clip"));
        layerwise = Boolean.parseBoolean(req(m, "layerwise"));
        weightBits = Integer.parseInt(m.getOrDefault("weight_bits", "16")); // checkpoints before int8 weights: 16
        weightGroup = Integer.parseInt(m.getOrDefault("weight_group", "256"));
        seed = Long.parseLong(req(m, "seed"));
        data = req(m, "data");
        tokenizer = req(m, "tokenizer");
        int saved = Integer.parseInt(req(m, "steps"));
        steps = Math.max(saved, requestedSteps == 300 ? saved : requestedSteps);
        if (stopAt != null && stopAt <= Long.parseLong(req(m, "step"))) stopAt = null;
    }

    private String req(Map<String, String> m, String k) {
        String v = m.get(k);
        if (v == null) throw new IllegalArgumentException("checkpoint " + resume + " lacks metadata '" + k + "'");
        return v;
    }

    /** Memory a plan may use: free physical memory on the CPU (off-heap arenas), free device memory on a GPU. */
    static long availableBytes(Device d) {
        if (d instanceof Device.Cpu) {
            var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            if (os instanceof com.sun.management.OperatingSystemMXBean sun) return sun.getFreeMemorySize();
            return Runtime.getRuntime().maxMemory();
        }
        return Long.MAX_VALUE; // CUDA: the CUDA backend checks cudaMemGetInfo when it reserves
    }
}
