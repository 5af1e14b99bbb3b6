package dev.tally.cli;

import dev.tally.models.llama.LlamaConfig;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Per-method hyperparameters of a comparison: what the papers' pre-training scripts pass (GaLore
 * scripts/benchmark_c4, APOLLO scripts/pretrain_c4; see shared/spec/algorithms.md), then the user's
 * {@code --opt method:key=value} overrides.
 *
 * <ul>
 * <li>adamw: lr 1e-3, weight_decay 0 (the references' AdamW baseline has no weight decay)</li>
 * <li>galore_adamw: lr 0.01, scale 0.25, update_proj_gap 200, the paper rank for the model size</li>
 * <li>apollo: lr 0.01, scale 1, update_proj_gap 200, channel-wise scaling, the paper rank</li>
 * <li>apollo_mini: lr 0.01, rank 1, scale 128, update_proj_gap 200, tensor-wise scaling, scale_front (the 60M/130M scripts)</li>
 * <li>adamw8bit, galore_adamw8bit: as adamw / galore_adamw; adafactor, galore_adafactor: lr 0.01 with relative_step and
 *     scale_parameter off (GaLore's C4 setting); came: lr 2e-4 (its README)</li>
 * </ul>
 */
final class ComparePresets {
    private ComparePresets() {}

    static Map<String, Object> preset(OptimizerKind kind, LlamaConfig config) {
        Map<String, Object> h = new TreeMap<>();
        switch (kind) {
            case ADAMW, ADAMW8BIT -> { h.put("lr", 1e-3); h.put("weight_decay", 0.0); }
            case GALORE_ADAMW, GALORE_ADAMW8BIT -> { h.put("lr", 0.01); h.put("scale", 0.25); h.put("update_proj_gap", 200L); }
            case APOLLO -> { h.put("lr", 0.01); h.put("scale", 1.0); h.put("update_proj_gap", 200L); h.put("scale_type", "channel"); }
            case APOLLO_MINI -> {
                h.put("lr", 0.01); h.put("rank", 1L); h.put("scale", 128.0); h.put("update_proj_gap", 200L);
                h.put("scale_type", "tensor"); h.put("scale_front", true);
            }
            case ADAFACTOR, GALORE_ADAFACTOR -> { h.put("lr", 0.01); h.put("relative_step", false); h.put("scale_parameter", false); }
            case CAME -> h.put("lr", 2e-4);
            default -> throw new IllegalStateException("no preset for " + kind);
        }
        if (kind == OptimizerKind.GALORE_ADAMW8BIT) h.put("weight_decay", 0.0);
        if (kind == OptimizerKind.GALORE_ADAFACTOR) { h.put("scale", 0.25); h.put("update_proj_gap", 200L); }
        return RunSetup.hyper(kind, config, h);
    }

    /** {@code method:key=value} overrides, grouped by method; a method that is not compared is an error. */
    static Map<String, Map<String, Object>> overrides(List<String> given, List<String> methods) {
        Map<String, List<String>> raw = new LinkedHashMap<>();
        for (String s : given) {
            int colon = s.indexOf(':');
            if (colon <= 0) throw new IllegalArgumentException("--opt '" + s + "' should look like method:key=value (e.g. apollo_mini:lr=0.02)");
            String method = OptimizerKind.parse(s.substring(0, colon).trim()).userName();
            if (!methods.contains(method)) throw new IllegalArgumentException("--opt '" + s + "': " + method + " is not among --optimizers " + methods);
            raw.computeIfAbsent(method, k -> new ArrayList<>()).add(s.substring(colon + 1));
        }
        Map<String, Map<String, Object>> out = new LinkedHashMap<>();
        raw.forEach((m, kv) -> out.put(m, Optimizers.parseAssignments(kv)));
        return out;
    }
}
