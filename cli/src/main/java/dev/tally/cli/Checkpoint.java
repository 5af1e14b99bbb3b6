package dev.tally.cli;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.train.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Weights and optimizer state in one safetensors file ("model.&lt;param&gt;", "optim.&lt;state&gt;"), with the run's
 * settings and step in its metadata. Written atomically (temporary file, synced, renamed, folder synced): a crash never
 * leaves a broken checkpoint under the final name.
 */
public final class Checkpoint {
    public static final String FORMAT = "tally-checkpoint-1";

    private Checkpoint() {}

    public static void save(Path path, Trainer t, Map<String, String> settings, long step) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Parameter p : t.model().parameters()) {
            tensors.put("model." + p.name(), p.value()); // int8 weights: the codes, plus their scales and zero points
            if (p.isQuantized()) {
                tensors.put("model." + p.name() + ".scales", p.quantized().scales());
                tensors.put("model." + p.name() + ".zeros", p.quantized().zeros());
            }
        }
        Optimizer.StateDict optim = t.optimizer().stateDict();
        optim.tensors().forEach((k, v) -> tensors.put("optim." + k, v));
        Map<String, String> meta = new LinkedHashMap<>(settings);
        optim.metadata().forEach((k, v) -> meta.put("optim." + k, v)); // optimizer name, groups, counters
        meta.put("format", FORMAT);
        meta.put("step", Long.toString(step));
        meta.put("config", t.settings().config().toJson());
        SafeTensors.write(path, tensors, meta, t.ledger());
    }

    /**
     * Restores weights and optimizer state into a trainer built with the checkpoint's settings; returns the step. The
     * file must hold exactly the tensors this model and optimizer have (a checkpoint relabelled with another optimizer
     * is refused, naming the tensors that differ). The host copies of the optimizer state are booked in the run's ledger.
     */
    public static long load(SafeTensors.File f, Trainer t) {
        if (!FORMAT.equals(f.metadata().get("format"))) {
            throw new IllegalArgumentException(f.path() + " is not a Tally checkpoint (metadata format is " + f.metadata().get("format") + ")");
        }
        Map<String, Tensor> mine = t.optimizer().stateDict().tensors();
        String from = f.metadata().get("optim.optimizer"), me = t.optimizer().name();
        if (from != null && !from.equals(me)) { // the state dict says whose it is: the clearest reason, before the tensors
            throw new IllegalArgumentException(f.path() + " does not hold the state of this run (model " + f.metadata().get("model")
                    + ", optimizer " + me + "): " + me
                    + ": cannot load this state dict: the state dict is from optimizer " + from + ", this optimizer is " + me);
        }
        Set<String> expected = new TreeSet<>();
        for (Parameter p : t.model().parameters()) {
            expected.add("model." + p.name());
            if (p.isQuantized()) { // int8 weights: codes, scales and zero points
                expected.add("model." + p.name() + ".scales");
                expected.add("model." + p.name() + ".zeros");
            }
        }
        for (String k : mine.keySet()) expected.add("optim." + k);
        requireSameTensors(f, expected, t.optimizer().name());
        for (Parameter p : t.model().parameters()) {
            f.readInto("model." + p.name(), p.value());
            if (p.isQuantized()) {
                f.readInto("model." + p.name() + ".scales", p.quantized().scales());
                f.readInto("model." + p.name() + ".zeros", p.quantized().zeros());
            }
        }
        Map<String, Tensor> state = new LinkedHashMap<>();
        Map<String, String> optimMeta = new LinkedHashMap<>();
        f.metadata().forEach((k, v) -> {
            if (k.startsWith("optim.")) optimMeta.put(k.substring("optim.".length()), v);
        });
        try (MemoryArena host = new MemoryArena(t.ledger(), "checkpoint.load", MemoryCategory.OTHER, t.settings().device(),
                mine.values().stream().mapToLong(x -> MemoryArena.bookedBytes(x.dtype(), x.shape())).sum())) {
            for (Map.Entry<String, Tensor> e : mine.entrySet()) {
                String name = "optim." + e.getKey();
                // absent or of another shape: loadStateDict names what differs (optimizer, groups, hyperparameters, state)
                if (!f.has(name) || !java.util.Arrays.equals(f.entry(name).shape(), e.getValue().shape().dims())) continue;
                Tensor x = host.allocate(e.getKey(), e.getValue().dtype(), e.getValue().shape());
                f.readInto(name, x);
                state.put(e.getKey(), x);
            }
            t.optimizer().loadStateDict(new Optimizer.StateDict(state, optimMeta));
        }
        return Long.parseLong(f.metadata().get("step"));
    }

    private static void requireSameTensors(SafeTensors.File f, Set<String> expected, String optimizer) {
        Set<String> missing = new TreeSet<>(expected), unexpected = new TreeSet<>(f.entries().keySet());
        missing.removeAll(f.entries().keySet());
        unexpected.removeAll(expected);
        if (missing.isEmpty() && unexpected.isEmpty()) return;
        throw new IllegalArgumentException(f.path() + " does not hold the state of this run (model " + f.metadata().get("model")
                + ", optimizer " + optimizer + "; was it written by another optimizer or model?): " + listed("missing", missing)
                + (missing.isEmpty() || unexpected.isEmpty() ? "" : "; ") + listed("unexpected", unexpected));
    }

    private static String listed(String what, Set<String> names) {
        if (names.isEmpty()) return "";
        String first = String.join(", ", names.stream().limit(4).toList());
        return names.size() + " " + what + " (" + first + (names.size() > 4 ? ", ..." : "") + ")";
    }
}
