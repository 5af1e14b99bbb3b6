package dev.tally.optim;

import dev.tally.autograd.Parameter;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parameter group as torch.optim has them: parameters plus the hyperparameters that differ from the optimizer's
 * defaults (lr, weight_decay, rank, scale, update_proj_gap, … — any key the method knows). {@code projected} says that
 * the method's low-rank projection (GaLore, APOLLO) applies to this group; the caller decides it, the optimizer never
 * looks at parameter names. {@code name} is a label for messages and state dicts.
 *
 * <pre>{@code
 * List<ParamGroup> groups = List.of(
 *         ParamGroup.of(byRole(params, LINEAR)).withProjection(),
 *         ParamGroup.of(byRole(params, NORM, EMBEDDING)).with("weight_decay", 0.0),
 *         ParamGroup.of(byRole(params, HEAD)).with("lr", 1e-3));
 * }</pre>
 */
public record ParamGroup(String name, List<Parameter> params, boolean projected, Map<String, Object> options) {
    public ParamGroup {
        if (name == null) throw new IllegalArgumentException("a parameter group needs a name (may be empty)");
        params = List.copyOf(params);
        options = Collections.unmodifiableMap(new LinkedHashMap<>(options)); // values may be null (Python's None)
    }

    /** A plain (not projected), unnamed group with the optimizer's defaults. */
    public static ParamGroup of(List<Parameter> params) { return new ParamGroup("", params, false, Map.of()); }

    public ParamGroup named(String label) { return new ParamGroup(label, params, projected, options); }

    /** The same group with the method's low-rank projection applied to it. */
    public ParamGroup withProjection() { return new ParamGroup(name, params, true, options); }

    /** The same group with one hyperparameter set (overriding the optimizer's default for this group only). */
    public ParamGroup with(String key, Object value) {
        Map<String, Object> o = new LinkedHashMap<>(options);
        o.put(key, value);
        return new ParamGroup(name, params, projected, o);
    }

    /** The same group with several hyperparameters set. */
    public ParamGroup with(Map<String, ?> values) {
        Map<String, Object> o = new LinkedHashMap<>(options);
        o.putAll(values);
        return new ParamGroup(name, params, projected, o);
    }

    /** The parameters whose role is one of {@code roles}, in their order. */
    public static List<Parameter> byRole(List<Parameter> params, Parameter.Role... roles) {
        List<Parameter.Role> wanted = List.of(roles);
        return params.stream().filter(p -> wanted.contains(p.role())).toList();
    }

    /**
     * The grouping of the GaLore and APOLLO papers' scripts: the linear weights inside the blocks (role
     * {@link Parameter.Role#LINEAR}, as the model declares them) are projected; embeddings, norms and the head are not.
     * Empty groups are left out.
     */
    public static List<ParamGroup> paperStyle(List<Parameter> params) {
        List<Parameter> linear = new ArrayList<>(), rest = new ArrayList<>();
        for (Parameter p : params) (p.role() == Parameter.Role.LINEAR ? linear : rest).add(p);
        List<ParamGroup> groups = new ArrayList<>();
        if (!linear.isEmpty()) groups.add(new ParamGroup("projected", linear, true, Map.of()));
        if (!rest.isEmpty()) groups.add(new ParamGroup("other", rest, false, Map.of()));
        return groups;
    }
}
