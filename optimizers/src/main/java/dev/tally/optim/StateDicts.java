package dev.tally.optim;

import dev.tally.autograd.Optimizer.StateDict;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * (De)serialising an optimizer's state, apart from booking and stepping it. The tensors are the booked state itself
 * ("&lt;param&gt;.&lt;state&gt;"); the metadata is text: {@code optimizer} (its name), {@code param_groups} (JSON: per group its
 * name, whether it is projected, its parameters in order and its hyperparameters), {@code lr_scale} (the schedule's
 * factor) and {@code counters} (JSON: per parameter its step, projection refreshes and APOLLO seed).
 *
 * <p>Loading follows torch.optim: the groups must hold the same parameters (same order, same projection), and each group
 * takes the dict's hyperparameters — except that hyperparameters which change the shape of the booked state (rank,
 * state dtype, …) must already agree, since that memory is booked. Every check runs before anything changes.
 */
final class StateDicts {
    static final String OPTIMIZER = "optimizer", GROUPS = "param_groups", LR_SCALE = "lr_scale", COUNTERS = "counters";

    private StateDicts() {}

    static StateDict write(OptimizerKind kind, List<Group> groups, List<Slot> slots, double lrScale) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, Object> counters = new LinkedHashMap<>();
        for (Slot s : slots) {
            s.state.tensors.forEach((k, t) -> tensors.put(s.param.name() + "." + k, t));
            counters.put(s.param.name(), new long[] {s.state.step, s.state.refreshes, s.state.seed});
        }
        List<Object> gs = new ArrayList<>();
        for (Group g : groups) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", g.name());
            m.put("projected", g.projected());
            m.put("params", g.params().stream().map(p -> p.name()).toList());
            m.put("hyper", g.hyper().asMap());
            gs.add(m);
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(OPTIMIZER, kind.userName());
        meta.put(GROUPS, Json.write(gs));
        meta.put(LR_SCALE, Double.toString(lrScale));
        meta.put(COUNTERS, Json.write(counters));
        return new StateDict(tensors, meta);
    }

    /** A checked dict, ready to apply: each group's hyperparameters, the schedule's factor and each slot's counters. */
    record Checked(List<Hyper> hypers, double lrScale, Map<Slot, long[]> counters) {}

    static Checked check(StateDict sd, OptimizerKind kind, List<Group> groups, List<Slot> slots) {
        String me = kind.userName();
        Map<String, String> meta = sd.metadata();
        String from = meta.get(OPTIMIZER);
        if (from == null) throw refuse(me, "the state dict does not say which optimizer wrote it (no '" + OPTIMIZER + "' entry)");
        if (!from.equals(me)) throw refuse(me, "the state dict is from optimizer " + from + ", this optimizer is " + me);
        List<?> dictGroups = jsonList(me, meta, GROUPS);
        if (dictGroups.size() != groups.size()) {
            throw refuse(me, "the state dict has " + dictGroups.size() + " parameter group(s), this optimizer " + groups.size());
        }
        List<Hyper> hypers = new ArrayList<>();
        for (Group g : groups) hypers.add(checkGroup(me, kind, g, dictGroups.get(g.index()), slots));

        Map<String, Tensor> mine = new LinkedHashMap<>();
        for (Slot s : slots) s.state.tensors.forEach((k, t) -> mine.put(s.param.name() + "." + k, t));
        for (Map.Entry<String, Tensor> e : mine.entrySet()) {
            Tensor src = sd.tensors().get(e.getKey());
            if (src == null) throw refuse(me, "the state dict lacks state '" + e.getKey() + "'");
            Tensor t = e.getValue();
            if (src.dtype() != t.dtype() || !src.shape().equals(t.shape())) {
                throw refuse(me, "state '" + e.getKey() + "' is " + src.dtype() + src.shape() + " in the dict, " + t.dtype() + t.shape() + " here");
            }
        }
        for (String k : sd.tensors().keySet()) {
            if (!mine.containsKey(k)) throw refuse(me, "the state dict has state '" + k + "' that this optimizer does not keep");
        }

        Map<String, Object> counterJson = jsonObject(me, meta, COUNTERS);
        Map<Slot, long[]> counters = new LinkedHashMap<>();
        for (Slot s : slots) {
            if (!(counterJson.get(s.param.name()) instanceof List<?> c) || c.size() != 3 || !c.stream().allMatch(x -> x instanceof Long)) {
                throw refuse(me, "the state dict's counters lack three integers (step, refreshes, seed) for " + s.param.name());
            }
            counters.put(s, new long[] {(Long) c.get(0), (Long) c.get(1), (Long) c.get(2)});
        }
        double lrScale;
        try {
            lrScale = Double.parseDouble(Objects.requireNonNullElse(meta.get(LR_SCALE), "1.0"));
        } catch (NumberFormatException e) {
            throw refuse(me, "the state dict's " + LR_SCALE + " '" + meta.get(LR_SCALE) + "' is not a number");
        }
        if (!(lrScale >= 0)) throw refuse(me, "the state dict's " + LR_SCALE + " is " + lrScale);
        return new Checked(hypers, lrScale, counters);
    }

    private static Hyper checkGroup(String me, OptimizerKind kind, Group g, Object dictGroup, List<Slot> slots) {
        if (!(dictGroup instanceof Map<?, ?> d)) throw refuse(me, g.label() + " in the state dict is not a JSON object");
        List<String> here = g.params().stream().map(p -> p.name()).toList();
        List<String> there = d.get("params") instanceof List<?> l ? l.stream().map(String::valueOf).toList() : List.of();
        if (!here.equals(there)) {
            Set<String> missing = new LinkedHashSet<>(there), extra = new LinkedHashSet<>(here);
            missing.removeAll(here);
            extra.removeAll(there);
            String what = missing.isEmpty() && extra.isEmpty() ? "the same parameters in another order"
                    : (extra.isEmpty() ? "" : "here but not in the dict: " + extra) + (!extra.isEmpty() && !missing.isEmpty() ? "; " : "")
                    + (missing.isEmpty() ? "" : "in the dict but not here: " + missing);
            throw refuse(me, g.label() + " holds other parameters than the state dict's group " + g.index() + " (" + what + ")");
        }
        boolean projected = Boolean.TRUE.equals(d.get("projected"));
        if (projected != g.projected()) {
            throw refuse(me, g.label() + " is " + (g.projected() ? "" : "not ") + "projected here but "
                    + (projected ? "" : "not ") + "projected in the state dict");
        }
        if (!(d.get("hyper") instanceof Map<?, ?> hm)) throw refuse(me, g.label() + " in the state dict has no hyperparameters");
        Map<String, Object> given = new LinkedHashMap<>();
        hm.forEach((k, v) -> given.put(String.valueOf(k), v));
        Hyper h;
        try {
            h = new Hyper(kind.userName(), kind.defaults(), given);
            Optimizers.validate(kind, h);
        } catch (IllegalArgumentException e) {
            throw refuse(me, g.label() + " in the state dict: " + e.getMessage());
        }
        for (Slot s : slots) {
            if (s.group() != g) continue;
            if (!kind.updater(h, s.param, g.projected()).specs(s.shape()).equals(s.specs())) {
                throw refuse(me, g.label() + ": the state dict's hyperparameters give " + s.param.name() + " state of other shapes or dtypes"
                        + " (" + differences(h, g.hyper()) + ")");
            }
        }
        return h;
    }

    /** "rank: 8 in the dict, 16 here; …" for every hyperparameter that differs. */
    static String differences(Hyper dict, Hyper here) {
        List<String> out = new ArrayList<>();
        for (String k : here.keys()) {
            Object a = dict.asMap().get(k), b = here.asMap().get(k);
            if (!sameValue(a, b)) out.add(k + ": " + a + " in the dict, " + b + " here");
        }
        return out.isEmpty() ? "no hyperparameter differs" : String.join("; ", out);
    }

    /** Values equal as hyperparameters: numbers by value (8 = 8.0), lists element-wise. */
    static boolean sameValue(Object a, Object b) {
        if (a instanceof Number x && b instanceof Number y) return x.doubleValue() == y.doubleValue();
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) if (!sameValue(x.get(i), y.get(i))) return false;
            return true;
        }
        return Objects.equals(a, b) || (a != null && b != null && String.valueOf(a).equals(String.valueOf(b)));
    }

    private static List<?> jsonList(String me, Map<String, String> meta, String key) {
        String text = meta.get(key);
        if (text == null) throw refuse(me, "the state dict has no '" + key + "' entry");
        try {
            if (Json.parse(text) instanceof List<?> l) return l;
        } catch (IllegalArgumentException e) {
            throw refuse(me, "the state dict's '" + key + "' is not valid JSON: " + e.getMessage());
        }
        throw refuse(me, "the state dict's '" + key + "' is not a JSON list");
    }

    private static Map<String, Object> jsonObject(String me, Map<String, String> meta, String key) {
        String text = meta.get(key);
        if (text == null) throw refuse(me, "the state dict has no '" + key + "' entry");
        try {
            return Json.parseObject(text);
        } catch (IllegalArgumentException e) {
            throw refuse(me, "the state dict's '" + key + "' is not a JSON object: " + e.getMessage());
        }
    }

    private static IllegalArgumentException refuse(String me, String why) {
        return new IllegalArgumentException(me + ": cannot load this state dict: " + why);
    }
}
