package dev.tally.cli;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint written by {@code tally train}, opened for inference: its model config and settings from the metadata,
 * and a trainer (for its planned arenas) that holds the checkpoint's weights and no optimizer state.
 */
record CheckpointModel(Path path, Map<String, String> settings, LlamaConfig config, DType dtype) {

    static CheckpointModel open(Path path) throws IOException {
        try (SafeTensors.File f = SafeTensors.open(path)) {
            Map<String, String> m = f.metadata();
            if (!"tally-checkpoint-1".equals(m.get("format"))) {
                throw new IllegalArgumentException(path + " is not a Tally checkpoint (metadata format is " + m.get("format") + ")");
            }
            return new CheckpointModel(path, Map.copyOf(m), config(path, m), DType.parse(require(path, m, "dtype")));
        }
    }

    /** The model config stored in a checkpoint's metadata (LlamaConfig.toJson: the HF keys plus "name"). */
    static LlamaConfig config(Path path, Map<String, String> meta) {
        Map<String, Object> c = new LinkedHashMap<>(Json.parseObject(require(path, meta, "config")));
        Object name = c.remove("name");
        return LlamaConfig.fromJson(name == null ? "model" : name.toString(), Json.write(c));
    }

    static String require(Path path, Map<String, String> m, String key) {
        String v = m.get(key);
        if (v == null) throw new IllegalArgumentException("checkpoint " + path + " lacks metadata '" + key + "'");
        return v;
    }

    String setting(String key) { return require(path, settings, key); }

    /** A trainer for batch × seq windows with the checkpoint's weights loaded (loss as trained unless given). */
    Trainer trainer(int batch, int seq, String loss, Device device) throws IOException {
        Trainer.Settings s = new Trainer.Settings(config, dtype, batch, seq, 1, loss, false, device, 0, 0);
        Trainer t = new Trainer(s, Frozen::new, new MemoryLedger());
        try (SafeTensors.File f = SafeTensors.open(path)) {
            for (Parameter p : t.model().parameters()) f.readInto("model." + p.name(), p.value());
        } catch (RuntimeException | IOException e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** Inference holds no optimizer state: an optimizer that never steps. */
    private record Frozen(List<Parameter> parameters) implements Optimizer {
        @Override public String name() { return "none"; }
        @Override public MemoryNeeds memoryNeeds() { return new MemoryNeeds(0, 0); }
        @Override public void allocateState(MemoryLedger ledger, MemoryNeeds planned) {}
        @Override public void step() { throw new UnsupportedOperationException("inference does not train"); }
        @Override public void stepParameter(Parameter p) { step(); }
        @Override public void zeroGrad() {}
        @Override public void setLrScale(double factor) {}
        @Override public double[] learningRates() { return new double[0]; }
        @Override public StateDict stateDict() { return new StateDict(Map.of(), Map.of()); }
        @Override public void loadStateDict(StateDict state) {}
    }
}
