package dev.tally.cli;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.WeightFormat;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/** Shared by the commands: builds trainer settings and optimizer factories from names, with the papers' ranks. */
final class RunSetup {
    private RunSetup() {}

    /** The rank the papers' scripts use for a model size (GaLore / APOLLO); APOLLO-Mini is rank 1. */
    static long paperRank(OptimizerKind kind, LlamaConfig c) {
        if (kind == OptimizerKind.APOLLO_MINI || kind == OptimizerKind.Q_APOLLO_MINI) return 1;
        boolean galore = kind.projection() == OptimizerKind.Projection.SVD;
        long rank = switch (c.name()) {
            case "llama_60m" -> 128;
            case "llama_130m" -> galore ? 256 : 192;
            case "llama_350m" -> 256;
            case "llama_1b" -> galore ? 512 : 256;
            case "llama_7b" -> galore ? 1024 : 256;
            default -> Math.max(1, Math.min(128, c.hidden() / 4));
        };
        return Math.min(rank, Math.min(c.hidden(), c.intermediate()));
    }

    /** Hyperparameters: the user's, plus the paper rank for projected methods when none was given. */
    static Map<String, Object> hyper(OptimizerKind kind, LlamaConfig c, Map<String, Object> given) {
        Map<String, Object> h = new HashMap<>(given);
        if (kind.projection() != OptimizerKind.Projection.NONE && !h.containsKey("rank")) h.put("rank", paperRank(kind, c));
        return h;
    }

    /** The papers' grouping ({@link Optimizers#create(String, Map, List)}: the model's LINEAR weights are projected). */
    static Function<List<Parameter>, Optimizer> factory(OptimizerKind kind, Map<String, Object> hyper) {
        return params -> Optimizers.create(kind.userName(), hyper, params);
    }

    /** --weight-bits 16|8 and --weight-group 128|256, checked with a message naming the flag. */
    static WeightFormat weightFormat(int bits, int group) {
        if (bits != 16 && bits != 8) throw new IllegalArgumentException("--weight-bits must be 16 (model dtype) or 8 (int8), got " + bits);
        if (bits == 8 && group != 128 && group != 256) throw new IllegalArgumentException("--weight-group must be 128 or 256, got " + group);
        return WeightFormat.of(bits, group);
    }

    static Trainer.Settings settings(LlamaConfig c, DType dtype, int batch, int seq, int accum, String loss, boolean layerwise,
                                     Device device, long seed, double clip) {
        return new Trainer.Settings(c, dtype, batch, seq, accum, loss, layerwise, device, seed, clip);
    }
}
