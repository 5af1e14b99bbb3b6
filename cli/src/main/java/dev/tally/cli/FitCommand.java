package dev.tally.cli;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Recompute;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code tally fit}: which training configurations of a model fit a memory budget. Searches optimizer × layer-wise ×
 * recompute × weight bits × optimizer-state dtype × batch, planning every candidate on META through the same
 * {@link Trainer} that {@code memtable} and {@code train} build (so each figure is that run's exact plan), and prints
 * those that fit, largest batch first.
 *
 * <p>Speed: a plan's cost is its traced step. The trace depends only on the model, dtype, batch, sequence, loss,
 * recompute (and weight format), never on the optimizer or layer-wise updates, so each distinct trace is made once and
 * shared ({@link TraceCache}); nothing is assumed about how activations scale with batch — each batch is traced.
 */
@Command(name = "fit", mixinStandardHelpOptions = true,
        description = "Search the configurations of a model that fit a memory budget (optimizer × layer-wise × recompute × weight bits × state dtype × batch), planned on META.")
public final class FitCommand implements Callable<Integer> {
    @Option(names = "--model", description = "Config name or JSON file (default: ${DEFAULT-VALUE}).") String model = "llama_7b";
    @Option(names = "--budget", description = "Memory budget, e.g. 12GiB or 24GB (default: the free memory of --device).") String budget;
    @Option(names = "--device", description = "Device the runs are planned for: its attention path, and its free memory as the default budget (default: ${DEFAULT-VALUE}).") String device = "auto";
    @Option(names = "--seq", description = "Sequence length (default: ${DEFAULT-VALUE}).") int seq = 256;
    @Option(names = "--batch", split = ",", description = "Micro-batch sizes to try (default: ${DEFAULT-VALUE}).")
    List<Integer> batches = List.of(1, 2, 4, 8, 16, 32, 64);
    @Option(names = "--optimizers", split = ",", description = "Optimizers to try (default: all).") List<String> optimizers = Axes.optimizerNames();
    @Option(names = "--loss", description = "ce, cce, cce_exact or cce_fused (default: ${DEFAULT-VALUE}).") String loss = "cce";
    @Option(names = "--dtype", description = "Model dtype, f32 or bf16 (default: ${DEFAULT-VALUE}).") String dtype = "bf16";
    @Option(names = "--format", description = "table or csv (default: ${DEFAULT-VALUE}).") String format = "table";
    @Option(names = "--weight-group", description = "Group size of int8 weights, 128 or 256 (default: ${DEFAULT-VALUE}, Q-APOLLO's).") int weightGroup = 128;

    PrintStream out = System.out;

    /**
     * The search axes, each defined here and nowhere else. Optimizers come from the registry, so new ones join the
     * search by being registered. Int8 weights pair only with the optimizers that update them (q_*), and those only
     * with int8 weights (with 16-bit weights they are their plain twins).
     */
    static final class Axes {
        private Axes() {}

        /** Weight storage bits: 16 = the model dtype (bf16 here), 8 = int8 attention/MLP weights (group {@code --weight-group}). */
        static final List<Integer> WEIGHT_BITS = List.of(16, 8);
        static final List<Boolean> LAYERWISE = List.of(false, true);
        /** Recompute none or every layer ({@code memtable --recompute auto} finds the fewest layers for one configuration). */
        static final List<Recompute> RECOMPUTE = List.of(Recompute.NONE, Recompute.LAYERS);

        static List<String> optimizerNames() {
            return Arrays.stream(OptimizerKind.values()).map(OptimizerKind::userName).toList();
        }

        /** The optimizer-state dtypes an optimizer offers: its {@code state_dtype} choices, or its own fixed format. */
        static List<String> stateDtypes(OptimizerKind kind) {
            return kind.defaults().containsKey("state_dtype") ? List.of("f32", "bf16") : List.of("default");
        }
    }

    /** One point of the search. */
    record Candidate(OptimizerKind optimizer, boolean layerwise, Recompute recompute, int weightBits, String stateDtype, int batch) {}

    /** A candidate's exact plan; {@code recomputed}: the decoder layers recomputed. */
    record Result(Candidate candidate, int recomputed, Map<MemoryCategory, Long> bytes) {
        long total() { return bytes.values().stream().mapToLong(Long::longValue).sum(); }
    }

    /** Traces shared between candidates: keyed by everything a trace depends on (optimizer and layer-wise are not). */
    static final class TraceCache implements Trainer.StepTracer {
        private final Map<List<Object>, Trainer.StepPlans> plans = new HashMap<>();
        int traced, served;
        /** The device the searched runs would run on: its attention path is what the plans book. */
        Device runsOn = Device.CPU;

        @Override public Trainer.StepPlans trace(Trainer.Settings s, int recomputedLayers) {
            // The key is the settings with the fields a trace ignores normalised away; a field added to Settings later
            // (e.g. the weight format) is part of the key by default — the safe direction.
            Trainer.Settings key = new Trainer.Settings(s.config(), s.dtype(), s.batch(), s.seq(), 1, s.loss(), false, Device.META, 0, 0,
                    s.weights(), Recompute.NONE);
            served++;
            return plans.computeIfAbsent(List.of(key, s.accumulation(), recomputedLayers), k -> {
                traced++;
                return Trainer.trace(s, recomputedLayers, runsOn);
            });
        }
    }

    private final TraceCache cache = new TraceCache();

    @Override public Integer call() {
        if (!format.equalsIgnoreCase("table") && !format.equalsIgnoreCase("csv")) {
            throw new IllegalArgumentException("unknown --format '" + format + "' (expected table or csv)");
        }
        for (int b : batches) if (b < 1) throw new IllegalArgumentException("--batch: sizes must be >= 1, got " + b);
        LlamaConfig config = LlamaConfig.named(model);
        DType dt = DType.parse(dtype);
        Device target = dev.tally.engine.Backends.resolve(device);
        cache.runsOn = target; // a GPU run keeps the attention probabilities the CPU's fused kernel does not
        long budgetBytes = budget != null ? Recompute.parseBytes(budget) : Recompute.deviceBudget(target);
        long t0 = System.nanoTime();
        List<Result> fits = new ArrayList<>();
        Map<String, Integer> refused = new java.util.LinkedHashMap<>();
        int candidates = 0;
        for (String name : optimizers) {
            OptimizerKind kind = OptimizerKind.parse(name);
            for (boolean lw : Axes.LAYERWISE) for (int bits : Axes.WEIGHT_BITS) for (String sd : Axes.stateDtypes(kind))
                for (Recompute rc : Axes.RECOMPUTE) for (int b : batches) {
                    if ((bits == 8) != kind.updatesQuantizedWeights()) continue; // not a pairing (see Axes)
                    candidates++;
                    Candidate c = new Candidate(kind, lw, rc, bits, sd, b);
                    Result r;
                    try {
                        r = plan(config, dt, c);
                    } catch (IllegalArgumentException e) {
                        // a combination the library refuses (e.g. an optimizer that needs int8 weights, a rank above a
                        // dimension): not a configuration, so not searched; the header says how many and why
                        refused.merge(e.getMessage(), 1, Integer::sum);
                        continue;
                    }
                    if (r.total() <= budgetBytes) fits.add(r);
                }
        }
        double secs = (System.nanoTime() - t0) * 1e-9;
        fits.sort(Comparator.comparingInt((Result r) -> -r.candidate().batch()).thenComparingLong(Result::total));
        if (format.equalsIgnoreCase("csv")) printCsv(config, fits);
        else printTable(config, budgetBytes, fits, candidates, secs);
        refused.forEach((why, n) -> System.err.printf("tally fit: %d combination(s) not planned: %s%n", n, why));
        return 0;
    }

    /** The run a candidate describes, on META. */
    Trainer.Settings settings(LlamaConfig config, DType dt, Candidate c, Recompute recompute) {
        return RunSetup.settings(config, dt, c.batch(), seq, 1, loss, c.layerwise(), Device.META, 0, 0)
                .withWeights(RunSetup.weightFormat(c.weightBits(), weightGroup)).withRecompute(recompute);
    }

    /** Plans a candidate exactly as {@code memtable} would. */
    Result plan(LlamaConfig config, DType dt, Candidate c) {
        Recompute rc = c.recompute();
        Map<String, Object> hyper = RunSetup.hyper(c.optimizer(), config, MemtableCommand.defaultsFor(c.optimizer()));
        if (!c.stateDtype().equals("default")) hyper.put("state_dtype", c.stateDtype());
        MemoryLedger ledger = new MemoryLedger();
        try (Trainer t = new Trainer(settings(config, dt, c, rc), RunSetup.factory(c.optimizer(), hyper), ledger, cache)) {
            Map<MemoryCategory, Long> bytes = new EnumMap<>(MemoryCategory.class);
            for (MemoryCategory cat : MemoryCategory.values()) bytes.put(cat, ledger.entry(Device.META, cat).capacity());
            return new Result(c, t.recomputedLayers(), bytes);
        }
    }

    /** What a configuration costs besides memory, in a few words. */
    static String costNote(Result r, LlamaConfig config) {
        Candidate c = r.candidate();
        List<String> notes = new ArrayList<>();
        if (r.recomputed() > 0) {
            notes.add(r.recomputed() == config.layers() ? "recompute all layers ≈ +1 forward (~+33% step time)"
                    : String.format("recompute %d/%d layers ≈ +%.2f forward", r.recomputed(), config.layers(), r.recomputed() / (double) config.layers()));
        }
        if (c.layerwise()) notes.add("per-layer: updates inside backward, no gradient accumulation by summing, no global clipping");
        if (c.weightBits() == 8) notes.add("int8 weights: quantization noise, stochastic rounding");
        if (c.stateDtype().equals("bf16")) notes.add("bf16 moments: reduced precision");
        notes.add(switch (c.optimizer()) {
            case ADAMW -> "full Adam";
            case ADAFACTOR -> "factored second moment, no first moment";
            case CAME -> "factored moments + confidence, extra update work";
            case ADAMW8BIT -> "8-bit block-wise moments";
            case GALORE_ADAMW -> "low-rank Adam, SVD every gap steps";
            case GALORE_ADAFACTOR -> "low-rank Adafactor, SVD every gap steps";
            case GALORE_ADAMW8BIT -> "low-rank 8-bit Adam, SVD every gap steps";
            case APOLLO -> "random projection, channel-wise scaling";
            case APOLLO_MINI -> "rank-1 random projection, tensor-wise scaling";
            default -> c.optimizer().userName();
        });
        return String.join("; ", notes);
    }

    private static String rc(Result r) { return Integer.toString(r.recomputed()); }

    private void printTable(LlamaConfig config, long budgetBytes, List<Result> fits, int candidates, double secs) {
        out.printf("%s, %s %s, seq %d, loss %s: %d of %d configurations fit %s (searched in %.1f s, %d traces for %d plans)%n",
                config.name(), dtype, "weights", seq, loss, fits.size(), candidates, Recompute.describeBytes(budgetBytes), secs,
                cache.traced, cache.served);
        out.printf("%5s %-18s %3s %3s %4s %-7s %12s %12s %12s %12s %12s %12s %12s  %s%n", "batch", "optimizer", "lw", "rc", "wbit", "states",
                "weights", "grads", "opt_state", "activations", "loss_ws", "workspace", "total", "what it costs");
        for (Result r : fits) {
            Candidate c = r.candidate();
            out.printf("%5d %-18s %3s %3s %4d %-7s %12s %12s %12s %12s %12s %12s %12s  %s%n", c.batch(), c.optimizer().userName(),
                    c.layerwise() ? "yes" : "no", rc(r), c.weightBits(), c.stateDtype(), h(r, MemoryCategory.WEIGHTS), h(r, MemoryCategory.GRADS),
                    h(r, MemoryCategory.OPTIMIZER_STATE), h(r, MemoryCategory.ACTIVATIONS), h(r, MemoryCategory.LOSS),
                    h(r, MemoryCategory.WORKSPACE), MemoryLedger.human(r.total()), costNote(r, config));
        }
        if (fits.isEmpty()) out.println("nothing fits: try a larger budget, a shorter --seq, or --loss cce");
    }

    private void printCsv(LlamaConfig config, List<Result> fits) {
        out.println("model,optimizer,category,bytes,loss,dtype,batch,seq,layerwise,recompute,weight_bits,state_dtype");
        for (Result r : fits) {
            Candidate c = r.candidate();
            for (MemoryCategory cat : MemoryCategory.values()) {
                out.printf("%s,%s,%s,%d,%s,%s,%d,%d,%s,%d,%d,%s%n", config.name(), c.optimizer().userName(), cat.label(), r.bytes().get(cat),
                        loss, dtype, c.batch(), seq, c.layerwise(), r.recomputed(), c.weightBits(), c.stateDtype());
            }
        }
    }

    private static String h(Result r, MemoryCategory c) { return MemoryLedger.human(r.bytes().get(c)); }
}
