package dev.tally.optim;

import dev.tally.autograd.Parameter;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds optimizers by name, validating every hyperparameter before any memory is booked. Hyperparameters come in two
 * layers, as in torch.optim: the optimizer-wide defaults given here, and each {@link ParamGroup}'s own values over them.
 */
public final class Optimizers {
    private Optimizers() {}

    /**
     * One optimizer over {@code params}, grouped as the papers' scripts do ({@link ParamGroup#paperStyle}): for GaLore
     * and APOLLO the parameters the model declares {@link Parameter.Role#LINEAR} are projected, the rest are not.
     */
    public static TallyOptimizer create(String name, Map<String, ?> hparams, List<Parameter> params) {
        OptimizerKind kind = OptimizerKind.parse(name);
        return create(kind, hparams, kind.projects() ? ParamGroup.paperStyle(params) : List.of(ParamGroup.of(params)));
    }

    /** One optimizer over explicit groups: each group's own hyperparameters override {@code defaults}. */
    public static TallyOptimizer create(String name, Map<String, ?> defaults, Collection<ParamGroup> groups) {
        return create(OptimizerKind.parse(name), defaults, groups);
    }

    public static TallyOptimizer create(OptimizerKind kind, Map<String, ?> defaults, Collection<ParamGroup> groups) {
        return new TallyOptimizer(kind, defaults, List.copyOf(groups));
    }

    /** Two groups with the same hyperparameters: {@code projected} get the method's projection, {@code plain} not. */
    public static TallyOptimizer create(OptimizerKind kind, Map<String, ?> hparams, List<Parameter> projected, List<Parameter> plain) {
        List<ParamGroup> groups = new ArrayList<>();
        if (!projected.isEmpty()) groups.add(ParamGroup.of(projected).named("projected").withProjection());
        if (!plain.isEmpty()) groups.add(ParamGroup.of(plain).named("other"));
        return create(kind, hparams, groups);
    }

    static void validate(OptimizerKind kind, Hyper h) {
        String n = kind.userName();
        if (h.isNull("lr")) {
            boolean relative = h.keys().contains("relative_step") && h.b("relative_step");
            if (!relative) throw new IllegalArgumentException(n + ": lr is required" + (kind == OptimizerKind.CAME ? " (CAME has no default)" : ""));
        } else {
            if (!(h.d("lr") >= 0)) throw new IllegalArgumentException(n + ": lr must be >= 0, got " + h.d("lr"));
            if (h.keys().contains("relative_step") && h.b("relative_step")) {
                throw new IllegalArgumentException(n + ": a manual lr cannot be combined with relative_step=true (set relative_step=false)");
            }
            if (kind == OptimizerKind.CAME && h.d("lr") <= 0) throw new IllegalArgumentException(n + ": lr must be > 0");
        }
        if (h.keys().contains("betas")) {
            int k = kind == OptimizerKind.CAME ? 3 : 2;
            if (h.tupleSize("betas") != k) throw new IllegalArgumentException(n + ": betas needs " + k + " values");
            for (int i = 0; i < k; i++) h.requireBeta("betas", i);
        }
        if (h.keys().contains("beta1") && !h.isNull("beta1")) {
            double b = h.d("beta1");
            if (!(b >= 0 && b < 1)) throw new IllegalArgumentException(n + ": beta1 must be in [0, 1), got " + b);
        }
        h.requireNonNegative("weight_decay");
        if (h.keys().contains("eps") && !(h.asMap().get("eps") instanceof List)) h.requireNonNegative("eps");
        if (h.keys().contains("amsgrad") && h.b("amsgrad")) throw new IllegalArgumentException(n + ": amsgrad is not supported");
        if (h.keys().contains("maximize") && h.b("maximize")) throw new IllegalArgumentException(n + ": maximize is not supported");
        if (h.keys().contains("state_dtype")) {
            var dt = dev.tally.engine.DType.parse(h.s("state_dtype"));
            if (dt != dev.tally.engine.DType.F32 && dt != dev.tally.engine.DType.BF16) {
                throw new IllegalArgumentException(n + ": state_dtype must be f32 or bf16, got " + h.s("state_dtype"));
            }
        }
        if (kind.projection() != OptimizerKind.Projection.NONE) {
            if (h.i("rank") < 1) throw new IllegalArgumentException(n + ": rank must be >= 1, got " + h.i("rank"));
            if (h.i("update_proj_gap") < 1) throw new IllegalArgumentException(n + ": update_proj_gap must be >= 1");
            h.requireNonNegative("scale");
            if (!h.s("proj_type").equals("std")) throw new IllegalArgumentException(n + ": only proj_type 'std' is implemented, got " + h.s("proj_type"));
        }
        if (h.keys().contains("scale_type") && !List.of("channel", "tensor").contains(h.s("scale_type"))) {
            throw new IllegalArgumentException(n + ": scale_type must be channel or tensor, got " + h.s("scale_type"));
        }
        if (h.keys().contains("proj") && !h.s("proj").equals("random")) {
            throw new IllegalArgumentException(n + ": only proj 'random' is implemented, got " + h.s("proj"));
        }
        if (h.keys().contains("min_8bit_size") && h.i("min_8bit_size") < 0) throw new IllegalArgumentException(n + ": min_8bit_size must be >= 0");
        if (kind == OptimizerKind.Q_GALORE_ADAMW8BIT) QGaloreUpdater.validate(h);
    }

    /** Hyperparameters as given on a command line ("lr=0.01", "betas=0.9,0.95"): numbers, booleans, null, lists. */
    public static Map<String, Object> parseAssignments(List<String> kv) {
        Map<String, Object> m = new HashMap<>();
        for (String s : kv) {
            int eq = s.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("hyperparameter '" + s + "' should look like key=value");
            String k = s.substring(0, eq).trim(), v = s.substring(eq + 1).trim();
            Object val;
            if (v.equalsIgnoreCase("null") || v.equalsIgnoreCase("none")) val = null;
            else if (v.equalsIgnoreCase("true") || v.equalsIgnoreCase("false")) val = Boolean.parseBoolean(v);
            else if (v.contains(",") || v.startsWith("[")) val = dev.tally.engine.io.Json.parse(v.startsWith("[") ? v : "[" + v + "]");
            else {
                try {
                    val = v.matches("-?\\d+") ? (Object) Long.parseLong(v) : (Object) Double.parseDouble(v);
                } catch (NumberFormatException e) {
                    val = v;
                }
            }
            m.put(k, val);
        }
        return m;
    }
}
