package dev.tally.cli;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.train.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Weights and optimizer state in one safetensors file ("model.&lt;param&gt;", "optim.&lt;state&gt;"), with the run's
 * settings and step in its metadata. Written atomically (temporary file, then rename): a crash never leaves a broken
 * checkpoint under the final name.
 */
public final class Checkpoint {
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
        meta.put("format", "tally-checkpoint-1");
        meta.put("step", Long.toString(step));
        meta.put("config", t.settings().config().toJson());
        SafeTensors.write(path, tensors, meta);
    }

    /** Restores weights and optimizer state into a trainer built with the checkpoint's settings; returns the step. */
    public static long load(SafeTensors.File f, Trainer t) {
        if (!"tally-checkpoint-1".equals(f.metadata().get("format"))) {
            throw new IllegalArgumentException(f.path() + " is not a Tally checkpoint (metadata format is " + f.metadata().get("format") + ")");
        }
        for (Parameter p : t.model().parameters()) {
            f.readInto("model." + p.name(), p.value());
            if (p.isQuantized()) {
                f.readInto("model." + p.name() + ".scales", p.quantized().scales());
                f.readInto("model." + p.name() + ".zeros", p.quantized().zeros());
            }
        }
        Map<String, Tensor> state = new LinkedHashMap<>();
        Map<String, Tensor> mine = t.optimizer().stateDict().tensors();
        Map<String, String> optimMeta = new LinkedHashMap<>();
        f.metadata().forEach((k, v) -> {
            if (k.startsWith("optim.")) optimMeta.put(k.substring("optim.".length()), v);
        });
        try (dev.tally.engine.Arena host = new dev.tally.engine.Arena(new dev.tally.engine.MemoryLedger(), "checkpoint.load",
                dev.tally.engine.MemoryCategory.OTHER, t.settings().device(), mine.values().stream()
                .mapToLong(x -> dev.tally.engine.Arena.bookedBytes(x.dtype(), x.shape())).sum())) {
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
}
