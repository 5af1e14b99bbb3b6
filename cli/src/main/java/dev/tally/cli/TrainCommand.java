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
import dev.tally.models.train.Recompute;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
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
    @Option(names = "--loss", description = "ce, cce, cce_exact or cce_fused (default: ${DEFAULT-VALUE}).") String loss = "cce";
    @Option(names = "--dtype", description = "f32 or bf16 (default: ${DEFAULT-VALUE}).") String dtype = "f32";
    @Option(names = "--batch", description = "Sequences per micro-batch (default: ${DEFAULT-VALUE}).") int batch = 8;
    @Option(names = "--seq", description = "Sequence length (default: ${DEFAULT-VALUE}).") int seq = 64;
    @Option(names = "--accum", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).") int accum = 1;
    @Option(names = "--steps", description = "Optimizer steps (default: ${DEFAULT-VALUE}).") int steps = 300;
    @Option(names = "--warmup", description = "Warmup steps (default: 10%% of steps).") Integer warmup;
    @Option(names = "--min-lr-ratio", description = "Cosine floor as a fraction of the peak (default: ${DEFAULT-VALUE}).") double minLrRatio = 0.1;
    @Option(names = "--clip", description = "Clip gradients to this global norm; 0 = off (default: ${DEFAULT-VALUE}).") double clip = 0;
    @Option(names = "--layerwise", description = "Update each weight in backward and free its gradient at once.") boolean layerwise;
    @Option(names = "--weight-bits", description = "16 (linear weights in the model dtype) or 8 (int8 attention/MLP weights; needs q_apollo, q_apollo_mini or q_galore_adamw8bit) (default: ${DEFAULT-VALUE}).")
    int weightBits = 16;
    @Option(names = "--weight-group", description = "Elements per scale and zero point of int8 weights, 128 or 256 (default: ${DEFAULT-VALUE}).")
    int weightGroup = 256;
    @Option(names = "--device", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).") String device = "auto";
    @Option(names = "--recompute", description = "Activation recompute: none, layers (every decoder layer), auto (the fewest layers that make the plan fit --budget), or a layer count N (layers 0..N-1) (default: ${DEFAULT-VALUE}).")
    String recompute = "none";
    @Option(names = "--budget", description = "Memory the run may use, e.g. 12GiB or 24GB; --recompute auto fits it, a plan over it is refused (default: the device's free memory).")
    String budget;
    @Option(names = "--seed", description = "Seed for weights and batches (default: ${DEFAULT-VALUE}).") long seed = 42;
    @Option(names = "--data", description = "Text (.txt, .md), JSON lines with a text field (.jsonl, .jsonl.gz, .json.gz), or a folder of them; tokenized once into a cache (default: the bundled Devil's Dictionary).") String data = TextData.BUNDLED;
    @Option(names = "--tokenizer", description = "byte or gpt2 (default: ${DEFAULT-VALUE}).") String tokenizer = "byte";
    @Option(names = "--eval-every", description = "Evaluate every N steps (default: ${DEFAULT-VALUE}).") int evalEvery = 100;
    @Option(names = "--eval-batches", description = "Held-out batches per evaluation (default: ${DEFAULT-VALUE}).") int evalBatches = 8;
    @Option(names = "--checkpoint-every", description = "Checkpoint every N steps; 0 = only at the end (default: ${DEFAULT-VALUE}).") int checkpointEvery = 0;
    @Option(names = "--out", description = "Output folder (default: ${DEFAULT-VALUE}).") Path out = Path.of("runs", "latest");
    @Option(names = "--resume", description = "Continue from a checkpoint with its settings (flags that differ are refused); --steps sets the schedule's length, --stop-at ends early.") Path resume;
    @Option(names = "--stop-at", description = "End after this step, checkpointing, while the schedule still spans --steps (a time-boxed session; continue with --resume).")
    Integer stopAt;
    @Option(names = "--init-from", description = "Start from a Hugging Face LLaMA folder (config.json + model.safetensors or its shards); its config replaces --model.")
    Path initFrom;
    @Option(names = "--no-progress", description = "Print a line every few steps instead of a progress bar.") boolean noProgress;

    @Spec CommandSpec spec;
    /** Test seams around each step (no-ops in a real run): tests poison weights or make an evaluation fail. */
    interface StepHooks {
        default void beforeStep(Trainer t, long step) {}
        default void beforeEvaluation(Trainer t, long step) {}
    }

    StepHooks hooks = new StepHooks() {};

    private final PrintStream outStream = System.out;

    @Override public Integer call() throws Exception {
        long startStep = 0;
        SafeTensors.File ckpt = null;
        try {
            if (resume != null) {
                ckpt = SafeTensors.open(resume);
                startStep = applySettings(ckpt.metadata());
            }
            return run(ckpt, startStep);
        } finally {
            if (ckpt != null) ckpt.close();
        }
    }

    private Integer run(SafeTensors.File ckpt, long startStep) throws Exception {
        if (optimizer == null) optimizer = weightBits == 8 ? "q_apollo_mini" : "apollo_mini";
        validateFlags(startStep);
        OptimizerKind kind = OptimizerKind.parse(optimizer);
        if (initFrom != null && resume == null) model = InitFrom.modelFile(initFrom, out).toString(); // --resume finds it in metadata
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
        validateData(text);
        int warm = warmup != null ? warmup : steps / 10;
        LrSchedule schedule = new LrSchedule(Math.min(warm, steps), Math.max(1, steps), minLrRatio);
        Device dev = Backends.resolve(device);
        long budgetBytes = budget != null ? Recompute.parseBytes(budget) : Recompute.deviceBudget(dev);
        Trainer.Settings ts = RunSetup.settings(config, dt, batch, seq, accum, loss, layerwise, dev, seed, clip)
                .withWeights(RunSetup.weightFormat(weightBits, weightGroup))
                .withRecompute(Recompute.parse(recompute, budgetBytes));

        // 1. the plan, from the same code on META, before any memory is taken; the run below is built from it (no second
        // META pass), and takes what it chose for recompute auto (resolved once, against the budget)
        Trainer.Plan plan = Trainer.plan(ts, RunSetup.factory(kind, hyper));
        outStream.print(plan.report());
        long planned = plan.totalBytes();
        ts = plan.settings();
        if (budget != null && planned > budgetBytes) { // an explicit budget binds the run too, not only recompute auto
            throw new IllegalStateException(String.format("the plan needs %,d B (%s) but --budget is %,d B (%s): use --recompute auto,"
                    + " a smaller model, batch or sequence, CCE, or a lighter optimizer", planned, MemoryLedger.human(planned), budgetBytes,
                    MemoryLedger.human(budgetBytes)));
        }
        refuseIfTooBig(planned, dev, availableBytes(dev, TrainCommand::cudaFreeBytes));
        outStream.printf("data: %s, %s tokenizer, %,d training / %,d held-out tokens%n", text.source(), tok.name(), text.trainTokens(), text.evalTokens());
        prepareOut();

        // 2. the run
        MemoryLedger ledger = new MemoryLedger();
        Map<String, String> meta = metadata(config, hyper);
        Path checkpointPath = out.resolve("checkpoint.safetensors");
        List<Integer> xs = new ArrayList<>(), evalX = new ArrayList<>();
        List<Double> ys = new ArrayList<>(), evalY = new ArrayList<>();
        String lastGood = ckpt != null ? resume + " (step " + startStep + ")" : null;
        boolean savedCheckpoint = false;
        try (Trainer t = new Trainer(plan, ledger);
             // a resume rewrites metrics.jsonl only once the checkpoint has loaded
             MetricsLog metrics = ckpt != null ? MetricsLog.resumed(out.resolve("metrics.jsonl"), loaded(ckpt, t, startStep))
                     : MetricsLog.fresh(out.resolve("metrics.jsonl"))) {
            if (ckpt != null) {
                for (Map<String, Object> row : metrics.kept()) {
                    int x = ((Number) row.get("step")).intValue();
                    if (row.get("loss") instanceof Number l) { xs.add(x); ys.add(l.doubleValue()); }
                    if (row.get("eval_loss") instanceof Number l) { evalX.add(x); evalY.add(l.doubleValue()); }
                }
            } else if (initFrom != null) {
                HfLlama.load(initFrom, t.model());
                outStream.printf("initialised from %s%n", initFrom);
            }
            long t0 = System.nanoTime();
            long tokens = 0;
            long end = stopAt != null ? stopAt : steps;
            boolean bar = !noProgress && System.console() != null;
            try (ProgressBar pb = bar ? new ProgressBarBuilder().setTaskName("train").setInitialMax(steps).startsFrom(startStep, java.time.Duration.ZERO)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).build() : null) {
                for (long step = startStep; step < end; step++) {
                    long shown = step + 1; // steps are 1-based in metrics.jsonl, checkpoints and messages
                    long[][] in = new long[accum][], tg = new long[accum][];
                    for (int k = 0; k < accum; k++) {
                        long[][] b = text.trainBatch(seed, step * accum + k, batch, seq);
                        in[k] = b[0];
                        tg[k] = b[1];
                    }
                    double factor = schedule.factor((int) step);
                    double l;
                    hooks.beforeStep(t, shown);
                    try {
                        l = t.step(in, tg, factor);
                    } catch (Trainer.NonFiniteException e) {
                        throw diverged(shown, e.getMessage(), lastGood);
                    }
                    if (!Double.isFinite(l)) throw diverged(shown, "the loss became " + l, lastGood);
                    double usedLr = t.lastLearningRates()[0]; // what the optimizer used (--opt lr=… included), not --lr
                    tokens += (long) accum * batch * seq;
                    double secs = (System.nanoTime() - t0) * 1e-9;
                    double tps = tokens / secs;
                    xs.add((int) shown);
                    ys.add(l);
                    metrics.write(Map.of("step", shown, "loss", l, "lr", usedLr, "tokens_per_s", tps, "elapsed_s", secs));
                    if (pb != null) {
                        pb.stepTo(shown);
                        pb.setExtraMessage(String.format("loss %.4f  %.0f tok/s  lr %.2e", l, tps, usedLr));
                    } else if (shown % 10 == 0 || shown == end) {
                        long remaining = (long) ((end - shown) * secs / (shown - startStep));
                        outStream.printf("step %5d/%d  loss %.4f  %7.0f tok/s  lr %.2e  ETA %ds%n", shown, steps, l, tps, usedLr, remaining);
                    }
                    boolean last = shown == end;
                    // checkpoint first: a failing evaluation never costs the steps since the last save
                    if ((checkpointEvery > 0 && shown % checkpointEvery == 0) || last) {
                        metrics.flush();
                        Checkpoint.save(checkpointPath, t, meta, shown);
                        savedCheckpoint = true;
                        lastGood = checkpointPath + " (step " + shown + ")";
                    }
                    if (shown % evalEvery == 0 || last) {
                        hooks.beforeEvaluation(t, shown);
                        double ev = evaluate(t, text);
                        if (!Double.isFinite(ev)) throw diverged(shown, "the held-out loss became " + ev, lastGood);
                        evalX.add((int) shown);
                        evalY.add(ev);
                        metrics.write(Map.of("step", shown, "eval_loss", ev, "eval_ppl", Math.exp(ev)));
                        if (pb == null) outStream.printf("step %5d  held-out loss %.4f  perplexity %.2f%n", shown, ev, Math.exp(ev));
                    }
                    metrics.flush();
                }
            }
            if (!evalY.isEmpty()) outStream.printf("final held-out loss %.4f, perplexity %.2f%n", evalY.getLast(), Math.exp(evalY.getLast()));
            outStream.printf("measured: activations high-water %,d B = plan %,d B%n", t.activationArena().highWater(), t.activationPlan().size());
            List<String> wrote = new ArrayList<>();
            if (metrics.wroteAny()) wrote.add(out.resolve("metrics.jsonl").toString());
            if (!xs.isEmpty()) {
                Plots.lossCurve(out.resolve("loss.png"), xs, ys, evalX, evalY, config.name() + " · " + kind.userName() + " · " + loss);
                wrote.add("loss.png");
            }
            Map<MemoryCategory, Long> bytes = new EnumMap<>(MemoryCategory.class);
            for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, ledger.entry(dev, c).capacity());
            Plots.memoryBars(out.resolve("memory.png"), "memory by category: " + config.name() + " · " + kind.userName(),
                    List.of(config.name()), Map.of(config.name(), bytes));
            wrote.add("memory.png");
            if (savedCheckpoint) wrote.add("checkpoint.safetensors (step " + end + ")");
            outStream.println("wrote " + String.join(", ", wrote));
        }
        return 0;
    }

    /** Loads the checkpoint into the trainer; returns its step. */
    private long loaded(SafeTensors.File ckpt, Trainer t, long step) {
        Checkpoint.load(ckpt, t);
        outStream.printf("resumed from %s at step %d%n", resume, step);
        return step;
    }

    private static IllegalStateException diverged(long step, String what, String lastGood) {
        return new IllegalStateException("training diverged at step " + step + " (numbered as in metrics.jsonl): " + what
                + "; nothing of this step was saved, " + (lastGood != null ? "the last good checkpoint is " + lastGood
                : "and this run wrote no checkpoint") + ". Try a lower --lr or --clip.");
    }

    /** Every flag checked before anything is read, written or allocated. */
    private void validateFlags(long startStep) {
        positive("--steps", steps);
        positive("--batch", batch);
        positive("--seq", seq);
        positive("--accum", accum);
        positive("--eval-every", evalEvery);
        positive("--eval-batches", evalBatches);
        if (checkpointEvery < 0) throw new IllegalArgumentException("--checkpoint-every must be >= 0 (0 = only at the end), got " + checkpointEvery);
        long tokensPerBatch = (long) batch * seq;
        if (tokensPerBatch > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(String.format("--batch %d x --seq %d = %,d tokens per micro-batch exceeds %,d", batch, seq,
                    tokensPerBatch, Integer.MAX_VALUE));
        }
        if (layerwise && clip > 0) {
            throw new IllegalArgumentException("--clip needs every gradient at once; it cannot be combined with --layerwise");
        }
        if (Files.exists(out) && !Files.isDirectory(out)) throw new IllegalArgumentException("--out " + out + ": is a file, not a folder");
        finiteAtLeastZero("--lr", lr);
        finiteAtLeastZero("--clip", clip);
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) throw new IllegalArgumentException("--min-lr-ratio must be in [0, 1], got " + minLrRatio);
        if (warmup != null && (warmup < 0 || (warmup > steps && resume == null))) {
            throw new IllegalArgumentException("--warmup must be in [0, --steps " + steps + "], got " + warmup);
        }
        if (stopAt != null) {
            if (stopAt <= startStep) {
                throw new IllegalArgumentException(startStep == 0 ? "--stop-at must be >= 1, got " + stopAt
                        : "--stop-at " + stopAt + " is not after the checkpoint's step " + startStep + ": there is nothing to train");
            }
            if (stopAt > steps) throw new IllegalArgumentException("--stop-at " + stopAt + " is beyond --steps " + steps);
        }
        if (startStep >= steps) {
            throw new IllegalArgumentException("checkpoint " + resume + " is at step " + startStep + " of " + steps
                    + ": there is nothing to train (give a larger --steps to extend the run)");
        }
    }

    private static void positive(String flag, long v) {
        if (v < 1) throw new IllegalArgumentException(flag + " must be >= 1, got " + v);
    }

    private static void finiteAtLeastZero(String flag, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) throw new IllegalArgumentException(flag + " must be a finite number >= 0, got " + v);
    }

    /** The corpus must hold at least one training window and one held-out batch. */
    private void validateData(TextData text) {
        if (text.trainTokens() < seq + 2) {
            throw new IllegalArgumentException(String.format("data %s has %,d training tokens, too few for sequences of --seq %d"
                    + " (needs %,d); use more text or a smaller --seq", text.source(), text.trainTokens(), seq, seq + 2));
        }
        long need = (long) batch * seq + 1;
        if (text.evalTokens() < need) {
            throw new IllegalArgumentException(String.format("the held-out split of %s (the last 5%%, %,d tokens) is smaller than one"
                    + " evaluation batch (--batch %d x --seq %d + 1 = %,d tokens); use more text or a smaller --batch or --seq",
                    text.source(), text.evalTokens(), batch, seq, need));
        }
    }

    /** The output folder: created if missing; a file in its place, or a folder that cannot be written, is refused. */
    private void prepareOut() throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) throw new IOException("--out " + out + ": is a file, not a folder");
        Files.createDirectories(out);
        if (!Files.isWritable(out)) throw new IOException("--out " + out + ": permission denied");
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
        m.put("recompute", recompute);
        if (budget != null) m.put("budget", budget);
        m.put("seed", Long.toString(seed));
        m.put("data", data);
        m.put("tokenizer", tokenizer);
        return m;
    }

    /**
     * Resuming: the run continues with the checkpoint's settings. A setting given on the command line must equal the
     * checkpoint's (else the run is refused, saying which); --steps, when given, sets the schedule's length and
     * --stop-at ends this session early. Returns the checkpoint's step.
     */
    private long applySettings(Map<String, String> m) {
        if (!Checkpoint.FORMAT.equals(m.get("format"))) {
            throw new IllegalArgumentException(resume + " is not a Tally checkpoint (metadata format is " + m.get("format") + ")");
        }
        CommandLine.ParseResult given = spec.commandLine().getParseResult();
        requireSame(given, "--model", model, req(m, "model"), false);
        if (given.hasMatchedOption("--optimizer") && OptimizerKind.parse(optimizer) != OptimizerKind.parse(req(m, "optimizer"))) {
            throw differs("--optimizer", optimizer, req(m, "optimizer"));
        }
        requireSame(given, "--lr", Double.toString(lr), req(m, "lr"), true);
        requireSame(given, "--loss", loss, req(m, "loss"), false);
        requireSame(given, "--dtype", dtype, req(m, "dtype"), false);
        requireSame(given, "--batch", Integer.toString(batch), req(m, "batch"), true);
        requireSame(given, "--seq", Integer.toString(seq), req(m, "seq"), true);
        requireSame(given, "--accum", Integer.toString(accum), req(m, "accum"), true);
        requireSame(given, "--warmup", String.valueOf(warmup), req(m, "warmup"), true);
        requireSame(given, "--min-lr-ratio", Double.toString(minLrRatio), req(m, "min_lr_ratio"), true);
        requireSame(given, "--clip", Double.toString(clip), req(m, "clip"), true);
        requireSame(given, "--layerwise", Boolean.toString(layerwise), req(m, "layerwise"), false);
        requireSame(given, "--seed", Long.toString(seed), req(m, "seed"), true);
        requireSame(given, "--data", data, req(m, "data"), false);
        requireSame(given, "--tokenizer", tokenizer, req(m, "tokenizer"), false);
        requireSame(given, "--weight-bits", Integer.toString(weightBits), m.getOrDefault("weight_bits", "16"), true);
        requireSame(given, "--weight-group", Integer.toString(weightGroup), m.getOrDefault("weight_group", "256"), true);
        Map<String, Object> savedHyper = Json.parseObject(req(m, "hparams"));
        if (given.hasMatchedOption("--opt")) {
            Optimizers.parseAssignments(opts).forEach((k, v) -> {
                if (!sameValue(v, savedHyper.get(k))) throw differs("--opt " + k, String.valueOf(v), String.valueOf(savedHyper.get(k)));
            });
        }
        model = req(m, "model");
        optimizer = req(m, "optimizer");
        opts = new ArrayList<>();
        savedHyper.forEach((k, v) -> opts.add(k + "=" + (v instanceof List<?> l
                ? String.join(",", l.stream().map(String::valueOf).toList()) : String.valueOf(v))));
        lr = number(m, "lr");
        loss = req(m, "loss");
        dtype = req(m, "dtype");
        batch = (int) integer(m, "batch");
        seq = (int) integer(m, "seq");
        accum = (int) integer(m, "accum");
        warmup = (int) integer(m, "warmup");
        minLrRatio = number(m, "min_lr_ratio");
        clip = number(m, "clip");
        layerwise = Boolean.parseBoolean(req(m, "layerwise"));
        weightBits = m.containsKey("weight_bits") ? (int) integer(m, "weight_bits") : 16; // checkpoints before int8 weights: 16
        weightGroup = m.containsKey("weight_group") ? (int) integer(m, "weight_group") : 256;
        seed = integer(m, "seed");
        recompute = m.getOrDefault("recompute", "none"); // checkpoints written before recompute existed
        budget = m.get("budget");
        data = req(m, "data");
        tokenizer = req(m, "tokenizer");
        int saved = (int) integer(m, "steps");
        long step = integer(m, "step");
        if (!given.hasMatchedOption("--steps")) {
            steps = saved;
        } else if (steps > step && steps != saved) {
            outStream.printf("--steps %d replaces the checkpoint's %d: the learning-rate schedule now spans %d steps%n", steps, saved, steps);
        } else if (steps <= step) {
            throw new IllegalArgumentException("--steps " + steps + " is not beyond the checkpoint's step " + step + ": there is nothing to train");
        }
        return step;
    }

    private void requireSame(CommandLine.ParseResult given, String flag, String mine, String saved, boolean numeric) {
        if (!given.hasMatchedOption(flag)) return;
        boolean same = numeric ? sameValue(parseNumber(flag, mine), parseNumber(flag, saved)) : mine.equals(saved);
        if (!same) throw differs(flag, mine, saved);
    }

    private IllegalArgumentException differs(String flag, String mine, String saved) {
        return new IllegalArgumentException(flag + " " + mine + " differs from checkpoint " + resume + "'s " + saved
                + ": a resumed run keeps the settings it was saved with (drop the flag, or start a new run without --resume)");
    }

    private static Object parseNumber(String flag, String s) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            return s;
        }
    }

    /** Numbers compare by value (1 = 1.0), lists element by element, everything else by its text. */
    private static boolean sameValue(Object a, Object b) {
        if (a instanceof Number x && b instanceof Number y) return x.doubleValue() == y.doubleValue();
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) if (!sameValue(x.get(i), y.get(i))) return false;
            return true;
        }
        return String.valueOf(a).equals(String.valueOf(b));
    }

    private String req(Map<String, String> m, String k) {
        String v = m.get(k);
        if (v == null) throw new IllegalArgumentException("checkpoint " + resume + " lacks metadata '" + k + "'");
        return v;
    }

    private long integer(Map<String, String> m, String k) {
        try {
            return Long.parseLong(req(m, k));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("checkpoint " + resume + " has a malformed metadata '" + k + "': " + m.get(k));
        }
    }

    private double number(Map<String, String> m, String k) {
        try {
            return Double.parseDouble(req(m, k));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("checkpoint " + resume + " has a malformed metadata '" + k + "': " + m.get(k));
        }
    }

    /** Throws, with the numbers, when a plan of {@code planned} bytes does not fit the {@code available} bytes of {@code dev}. */
    static void refuseIfTooBig(long planned, Device dev, long available) {
        if (planned > available) {
            throw new IllegalStateException(String.format("the plan needs %,d B (%s) but %s has %,d B (%s) available: use a smaller model,"
                    + " batch or sequence, CCE, or a lighter optimizer", planned, MemoryLedger.human(planned), dev, available,
                    MemoryLedger.human(available)));
        }
    }

    /**
     * Memory a plan may use: free physical memory on the CPU (off-heap arenas); on a GPU the device's free memory now
     * ({@code cudaFree}, cudaMemGetInfo: the backend's context, handles and workspaces are already taken, so they are not
     * counted twice). Code CUDA libraries load lazily at their first call (cuBLAS kernels) is not in the plan.
     */
    static long availableBytes(Device d, java.util.function.ToLongFunction<Device> cudaFree) {
        return switch (d) {
            case Device.Cpu c -> Backends.of(d).availableBytes();
            case Device.Cuda c -> cudaFree.applyAsLong(d);
            case Device.Meta m -> Long.MAX_VALUE; // shapes only
        };
    }

    private static long cudaFreeBytes(Device d) {
        return Backends.of(d).availableBytes();
    }
}
