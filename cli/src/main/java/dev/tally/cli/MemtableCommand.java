package dev.tally.cli;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.WeightFormat;
import dev.tally.models.train.Recompute;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code tally memtable}: exact bytes per memory category for configs × optimizers × loss × dtype × batch × sequence ×
 * layer-wise × recompute, by building the real training run on the META device (never a hand formula).
 */
@Command(name = "memtable", mixinStandardHelpOptions = true, description = "Memory per category for any configs × optimizers, planned on META.")
public final class MemtableCommand implements Callable<Integer> {
    @Option(names = "--models", split = ",", description = "Configs (default: ${DEFAULT-VALUE}).")
    List<String> models = List.of("llama_60m", "llama_130m", "llama_350m", "llama_1b", "llama_7b");
    @Option(names = "--optimizers", split = ",", description = "Optimizers (default: all).")
    List<String> optimizers = java.util.Arrays.stream(OptimizerKind.values()).map(OptimizerKind::userName).toList();
    @Option(names = "--loss", split = ",", description = "ce, cce, cce_exact, cce_fused (default: ${DEFAULT-VALUE}).") List<String> losses = List.of("cce");
    @Option(names = "--dtype", split = ",", description = "f32, bf16 (default: ${DEFAULT-VALUE}).") List<String> dtypes = List.of("bf16");
    @Option(names = "--batch", split = ",", description = "Micro-batch sizes (default: ${DEFAULT-VALUE}).") List<Integer> batches = List.of(1);
    @Option(names = "--seq", split = ",", description = "Sequence lengths (default: ${DEFAULT-VALUE}).") List<Integer> seqs = List.of(256);
    @Option(names = "--layerwise", split = ",", paramLabel = "false|true|both",
            description = "Layer-wise updates: false, true, both, or a comma list (default: ${DEFAULT-VALUE}).")
    List<String> layerwise = List.of("false");
    @Option(names = "--weight-bits", split = ",", description = "16 (model dtype), 8 (int8 attention/MLP weights; only the q_* optimizers, the others are skipped unless named) or both (default: ${DEFAULT-VALUE}).")
    List<Integer> weightBits = List.of(16);
    @Option(names = "--weight-group", description = "Group size of int8 weights, 128 or 256 (default: ${DEFAULT-VALUE}).") int weightGroup = 256;
    @Option(names = "--recompute", split = ",", description = "Activation recompute: none, layers (all), auto (fewest layers that fit --budget), or a layer count N (layers 0..N-1); several allowed (default: ${DEFAULT-VALUE}).")
    List<String> recompute = List.of("none");
    @Option(names = "--budget", description = "Memory budget for --recompute auto, e.g. 12GiB or 24GB (default: the free memory of --device).")
    String budget;
    @Option(names = "--format", description = "table or csv (default: ${DEFAULT-VALUE}).") String format = "table";
    @Option(names = "--plot", description = "Write a stacked-bar PNG here.") Path plot;
    @Option(names = "--measure", description = "Also allocate for real on --device, run one step, and print planned vs measured.") boolean measure;
    @Option(names = "--device", description = "Device the plans are for: its attention path (a GPU keeps the [B, H, T, T] "
            + "probabilities the CPU's fused attention does not), its free memory as --recompute auto's default budget, and "
            + "--measure's device (default: ${DEFAULT-VALUE}).") String device = "cpu";

    PrintStream out = System.out;

    /** One configuration's planned bytes; {@code recomputed} is the number of decoder layers recomputed in backward. */
    record Row(String model, String optimizer, String loss, String dtype, int batch, int seq, boolean layerwise,
               int recomputed, Map<MemoryCategory, Long> bytes, WeightFormat weights) {
        long total() { return bytes.values().stream().mapToLong(Long::longValue).sum(); }
        String label() { return model + "/" + optimizer + (layerwise ? "/lw" : "") + (weights.quantized() ? "/int8" : ""); }
        String weightColumn() { return weights.quantized() ? "8/" + weights.groupSize() : "16"; }
    }

    /** Plans one configuration on META, weights in the model dtype, no recompute. */
    static Row plan(String model, String optimizer, String loss, String dtype, int batch, int seq, boolean layerwise) {
        return plan(model, optimizer, loss, dtype, batch, seq, layerwise, WeightFormat.MODEL_DTYPE, Recompute.NONE);
    }

    static Row plan(String model, String optimizer, String loss, String dtype, int batch, int seq, boolean layerwise, WeightFormat weights) {
        return plan(model, optimizer, loss, dtype, batch, seq, layerwise, weights, Recompute.NONE);
    }

    static Row plan(String model, String optimizer, String loss, String dtype, int batch, int seq, boolean layerwise, Recompute recompute) {
        return plan(model, optimizer, loss, dtype, batch, seq, layerwise, WeightFormat.MODEL_DTYPE, recompute);
    }

    /** Plans one configuration on META for a run on the CPU (memtable's default device). */
    static Row plan(String model, String optimizer, String loss, String dtype, int batch, int seq, boolean layerwise,
                    WeightFormat weights, Recompute recompute) {
        return plan(model, optimizer, loss, dtype, batch, seq, layerwise, weights, recompute, Device.CPU);
    }

    /** Plans one configuration on META for a run on {@code runsOn}: that device's attention path is what it books. */
    static Row plan(String model, String optimizer, String loss, String dtype, int batch, int seq, boolean layerwise,
                    WeightFormat weights, Recompute recompute, Device runsOn) {
        Trainer.StepTracer tracer = (settings, layers) -> Trainer.trace(settings, layers, runsOn);
        LlamaConfig c = LlamaConfig.named(model);
        OptimizerKind kind = OptimizerKind.parse(optimizer);
        MemoryLedger ledger = new MemoryLedger();
        Map<String, Object> hyper = RunSetup.hyper(kind, c, defaultsFor(kind));
        Trainer.Settings s = RunSetup.settings(c, DType.parse(dtype), batch, seq, 1, loss, layerwise, Device.META, 0, 0)
                .withWeights(weights).withRecompute(recompute);
        try (Trainer t = new Trainer(s, RunSetup.factory(kind, hyper), ledger, tracer)) {
            Map<MemoryCategory, Long> bytes = new EnumMap<>(MemoryCategory.class);
            for (MemoryCategory cat : MemoryCategory.values()) bytes.put(cat, ledger.entry(Device.META, cat).capacity());
            return new Row(model, kind.userName(), loss, dtype, batch, seq, layerwise, t.recomputedLayers(), bytes, weights);
        }
    }

    static Map<String, Object> defaultsFor(OptimizerKind kind) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (kind == OptimizerKind.ADAFACTOR || kind == OptimizerKind.GALORE_ADAFACTOR) {
            m.put("lr", 0.01);
            m.put("relative_step", false);
            m.put("scale_parameter", false);
        } else if (kind == OptimizerKind.CAME) {
            m.put("lr", 2e-4);
        }
        return m;
    }

    @Override public Integer call() throws Exception {
        List<Boolean> layerwiseValues = layerwiseValues(layerwise);
        for (int b : batches) if (b < 1) throw new IllegalArgumentException("--batch must be >= 1, got " + b);
        for (int sq : seqs) if (sq < 1) throw new IllegalArgumentException("--seq must be >= 1, got " + sq);
        Device target = dev.tally.engine.Backends.resolve(device);
        // the device's free memory is asked for only when --recompute auto needs a budget (a GPU need not be present to
        // plan for one)
        boolean auto = recompute.stream().anyMatch(r -> r.trim().equalsIgnoreCase("auto"));
        long budgetBytes = budget != null ? Recompute.parseBytes(budget) : auto ? Recompute.deviceBudget(target) : Long.MAX_VALUE;
        List<Recompute> recomputes = recompute.stream().map(r -> Recompute.parse(r, budgetBytes)).toList();
        List<Row> rows = new ArrayList<>();
        java.util.Set<String> skipped = new java.util.TreeSet<>();
        for (String m : models) for (String o : optimizers) for (String l : losses) for (String d : dtypes)
            for (int b : batches) for (int s : seqs) for (boolean lw : layerwiseValues) for (int bits : weightBits) for (Recompute rc : recomputes) {
                WeightFormat wf = RunSetup.weightFormat(bits, weightGroup);
                // only the q_* optimizers update int8 weights: other pairings are skipped (and named below)
                if (wf.quantized() && !OptimizerKind.parse(o).updatesQuantizedWeights()) {
                    skipped.add(OptimizerKind.parse(o).userName());
                    continue;
                }
                rows.add(plan(m, o, l, d, b, s, lw, wf, rc, target));
            }
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("nothing to plan: " + String.join(", ", skipped)
                    + " cannot update int8 weights (use q_apollo, q_apollo_mini or q_galore_adamw8bit, or --weight-bits 16)");
        }
        if (!skipped.isEmpty()) System.err.println("memtable: int8 weights skipped for " + String.join(", ", skipped) + " (only q_* optimizers update them)");
        if (format.equalsIgnoreCase("csv")) {
            out.println("model,optimizer,category,bytes,loss,dtype,batch,seq,layerwise,weight_bits,weight_group,recompute");
            for (Row r : rows) {
                for (MemoryCategory c : MemoryCategory.values()) {
                    out.printf("%s,%s,%s,%d,%s,%s,%d,%d,%s,%d,%d,%d%n", r.model(), r.optimizer(), c.label(), r.bytes().get(c), r.loss(), r.dtype(),
                            r.batch(), r.seq(), r.layerwise(), r.weights().bits(), r.weights().groupSize(), r.recomputed());
                }
            }
        } else if (format.equalsIgnoreCase("table")) {
            // the loss column as wide as its longest name (4 for ce and cce, 9 with cce_fused)
            String loss = "%-" + Math.max(4, rows.stream().mapToInt(r -> r.loss().length()).max().orElse(4)) + "s";
            out.printf("%-12s %-18s " + loss + " %-5s %6s %5s %5s %3s %3s %12s %12s %12s %12s %12s %12s %12s%n", "model", "optimizer", "loss", "dtype",
                    "wbits", "batch", "seq", "lw", "rc", "weights", "grads", "opt_state", "activations", "loss_ws", "workspace", "total");
            for (Row r : rows) {
                out.printf("%-12s %-18s " + loss + " %-5s %6s %5d %5d %3s %3d %12s %12s %12s %12s %12s %12s %12s%n", r.model(), r.optimizer(), r.loss(),
                        r.dtype(), r.weightColumn(), r.batch(), r.seq(), r.layerwise() ? "yes" : "no", r.recomputed(), gib(r, MemoryCategory.WEIGHTS), gib(r, MemoryCategory.GRADS),
                        gib(r, MemoryCategory.OPTIMIZER_STATE), gib(r, MemoryCategory.ACTIVATIONS), gib(r, MemoryCategory.LOSS),
                        gib(r, MemoryCategory.WORKSPACE), MemoryLedger.human(r.total()));
            }
        } else {
            throw new IllegalArgumentException("unknown --format '" + format + "' (expected table or csv)");
        }
        if (plot != null) {
            Map<String, Map<MemoryCategory, Long>> bytes = new LinkedHashMap<>();
            for (Row r : rows) bytes.put(r.label(), r.bytes());
            Plots.memoryBars(plot, "planned memory (" + String.join(",", losses) + ", " + String.join(",", dtypes) + ")",
                    new ArrayList<>(bytes.keySet()), bytes);
            out.println("wrote " + plot);
        }
        if (measure) measure(rows);
        return 0;
    }

    /** The --layerwise values: "false", "true", "both" (= false, true), in the order given, without repeats. */
    static List<Boolean> layerwiseValues(List<String> given) {
        java.util.LinkedHashSet<Boolean> out = new java.util.LinkedHashSet<>();
        for (String v : given) {
            switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "false" -> out.add(false);
                case "true" -> out.add(true);
                case "both" -> { out.add(false); out.add(true); }
                default -> throw new IllegalArgumentException("--layerwise expects false, true or both (or a comma list), got '" + v + "'");
            }
        }
        return List.copyOf(out);
    }

    private static String gib(Row r, MemoryCategory c) { return MemoryLedger.human(r.bytes().get(c)); }

    /** Allocates each configuration for real, runs one step, and prints planned vs measured bytes. */
    private void measure(List<Row> rows) {
        Device d = dev.tally.engine.Backends.resolve(device);
        out.printf("%nplanned (META) vs measured (%s, one step):%n", d);
        for (Row r : rows) {
            LlamaConfig c = LlamaConfig.named(r.model());
            OptimizerKind kind = OptimizerKind.parse(r.optimizer());
            MemoryLedger ledger = new MemoryLedger();
            Trainer.Settings s = RunSetup.settings(c, DType.parse(r.dtype()), r.batch(), r.seq(), 1, r.loss(), r.layerwise(), d, 0, 0)
                    .withWeights(r.weights()).withRecompute(new Recompute.First(r.recomputed()));
            try (Trainer t = new Trainer(s, RunSetup.factory(kind, RunSetup.hyper(kind, c, defaultsFor(kind))), ledger)) {
                long[] ids = new long[r.batch() * r.seq()];
                for (int i = 0; i < ids.length; i++) ids[i] = (i * 7919L) % Math.min(256, c.vocab());
                t.step(new long[][] {ids}, new long[][] {ids}, 1.0);
                for (MemoryCategory cat : MemoryCategory.values()) {
                    long planned = r.bytes().get(cat), measured = ledger.entry(d, cat).capacity();
                    if (planned == 0 && measured == 0) continue;
                    out.printf("  %-28s %-16s planned %,16d B  measured %,16d B  %s%n", r.label(), cat.label(), planned, measured,
                            planned == measured ? "equal" : "DIFFERENT");
                }
                out.printf("  %-28s %-16s plan %,16d B  high-water %,16d B%n", r.label(), "activation plan", t.activationPlan().size(),
                        t.activationArena().highWater());
            }
        }
    }
}
