package dev.tally.tests.optim;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.SafeTensors;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;
import dev.tally.optim.ParamGroup;
import dev.tally.optim.TallyOptimizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.tally.tests.optim.OptimizerContractTest.copyStored;
import static dev.tally.tests.optim.OptimizerContractTest.grads;
import static dev.tally.tests.optim.OptimizerContractTest.hyper;
import static dev.tally.tests.optim.OptimizerContractTest.int8Params;
import static dev.tally.tests.optim.OptimizerContractTest.params;
import static dev.tally.tests.optim.OptimizerContractTest.stored;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parameter groups and state dicts as torch.optim users expect them, for all twelve optimizers; the three q_* methods
 * also with int8 LINEAR weights (the format they exist for), the others only with floating weights (they refuse int8).
 */
class ParamGroupsTest {
    @TempDir Path dir;

    /** One case: an optimizer over fp32 parameters, or (q_* methods) over parameters whose LINEAR matrices are int8. */
    private record Run(OptimizerKind kind, boolean int8) {
        List<Parameter> params(MemoryArena a, long seed) { return int8 ? int8Params(a, seed) : OptimizerContractTest.params(a, seed); }

        @Override public String toString() { return kind.userName() + (int8 ? " (int8 weights)" : ""); }
    }

    private static List<Run> runs() {
        List<Run> rs = new ArrayList<>();
        for (OptimizerKind k : OptimizerKind.values()) {
            rs.add(new Run(k, false));
            if (k.updatesQuantizedWeights()) rs.add(new Run(k, true));
        }
        return rs;
    }

    /** Per-group values that differ from the defaults, in every hyperparameter a group commonly overrides. */
    private static Map<String, Object> decayAndLr(OptimizerKind k, double lr, double wd) {
        Map<String, Object> m = new HashMap<>();
        m.put("lr", lr);
        m.put("weight_decay", wd);
        if (k == OptimizerKind.ADAFACTOR || k == OptimizerKind.GALORE_ADAFACTOR) m.put("relative_step", false);
        return m;
    }

    /**
     * Three groups — the LINEAR matrices projected (for GaLore/APOLLO) with their own lr, weight decay and scale; the head
     * with another lr; the norm without weight decay — in that order (APOLLO seeds parameters in optimizer order, so the
     * projected group comes first as in the separate optimizer it is compared with).
     */
    private static List<ParamGroup> threeGroups(OptimizerKind k, List<Parameter> ps) {
        ParamGroup linear = ParamGroup.of(ps.subList(0, 2)).named("linear").with(decayAndLr(k, 2e-3, 0.05));
        if (k.projects()) linear = linear.withProjection().with("scale", 0.5);
        return List.of(linear,
                ParamGroup.of(ps.subList(2, 3)).named("head").with(decayAndLr(k, 5e-4, 0.1)),
                ParamGroup.of(ps.subList(3, 4)).named("norm").with(decayAndLr(k, 1e-3, 0.0)));
    }

    @Test
    void groupsWithTheirOwnHyperparametersEqualSeparateOptimizersBitForBit() {
        for (Run c : runs()) {
            OptimizerKind kind = c.kind();
            MemoryLedger ledger = new MemoryLedger();
            try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21);
                 MemoryArena b = new MemoryArena(ledger, "b", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21)) {
                List<Parameter> p1 = c.params(a, 5), p2 = c.params(b, 5);
                List<ParamGroup> groups = threeGroups(kind, p1);
                TallyOptimizer grouped = Optimizers.create(kind, hyper(kind), groups);
                grouped.allocateState(ledger);
                // the same groups, each as an optimizer of its own with the group's values as its defaults
                List<TallyOptimizer> separate = new ArrayList<>();
                for (ParamGroup g : threeGroups(kind, p2)) {
                    Map<String, Object> h = new HashMap<>(hyper(kind));
                    h.putAll(g.options());
                    ParamGroup only = g.projected() ? ParamGroup.of(g.params()).withProjection() : ParamGroup.of(g.params());
                    TallyOptimizer o = Optimizers.create(kind, h, List.of(only));
                    o.allocateState(ledger);
                    separate.add(o);
                }
                float[] initial = stored(p1.get(0));
                for (int s = 0; s < 5; s++) { // crosses projection refreshes (gap 2)
                    double factor = 1.0 - 0.15 * s; // a schedule: each group's base lr times the factor
                    grads(p1, s);
                    grads(p2, s);
                    grouped.setLrScale(factor);
                    grouped.step();
                    for (TallyOptimizer o : separate) {
                        o.setLrScale(factor);
                        o.step();
                    }
                }
                for (int i = 0; i < p1.size(); i++) {
                    assertArrayEquals(stored(p2.get(i)), stored(p1.get(i)), c + " " + p1.get(i).name());
                }
                assertEquals(c.int8(), p1.get(0).isQuantized());
                assertTrue(!java.util.Arrays.equals(initial, stored(p1.get(0))), c + ": the weights moved");
                assertEquals(3, grouped.learningRates().length);
                for (TallyOptimizer o : separate) o.close();
                grouped.close();
            }
        }
    }

    @Test
    void theScheduleMultipliesEachGroupsBaseLearningRate() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21)) {
            List<Parameter> ps = params(a, 1);
            TallyOptimizer o = Optimizers.create(OptimizerKind.ADAMW, Map.of("lr", 1e-3), threeGroups(OptimizerKind.ADAMW, ps));
            assertArrayEquals(new double[] {2e-3, 5e-4, 1e-3}, o.learningRates());
            o.setLrScale(0.25);
            assertArrayEquals(new double[] {2e-3 * 0.25, 5e-4 * 0.25, 1e-3 * 0.25}, o.learningRates());
        }
    }

    /** Writes the dict into a safetensors file (tensors and metadata) and reads it back into host tensors. */
    private static Optimizer.StateDict throughFile(Path file, Optimizer.StateDict sd, Map<String, Tensor> shapesFrom, MemoryArena host) throws Exception {
        SafeTensors.write(file, sd.tensors(), sd.metadata());
        try (SafeTensors.File f = SafeTensors.open(file)) {
            Map<String, Tensor> load = new LinkedHashMap<>();
            for (var e : shapesFrom.entrySet()) {
                Tensor t = host.allocate(e.getKey(), e.getValue().dtype(), e.getValue().shape());
                f.readInto(e.getKey(), t);
                load.put(e.getKey(), t);
            }
            return new Optimizer.StateDict(load, f.metadata());
        }
    }

    @Test
    void stateDictRoundTripAcrossGroupsAndAProjectionRefreshContinuesBitIdentically() throws Exception {
        for (Run c : runs()) {
            OptimizerKind kind = c.kind();
            MemoryLedger ledger = new MemoryLedger();
            try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21);
                 MemoryArena b = new MemoryArena(ledger, "b", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21);
                 MemoryArena host = new MemoryArena(new MemoryLedger(), "h", MemoryCategory.OTHER, Device.CPU, 1 << 21)) {
                List<Parameter> p1 = c.params(a, 3), p2 = c.params(b, 3);
                TallyOptimizer o1 = Optimizers.create(kind, hyper(kind), threeGroups(kind, p1));
                o1.allocateState(ledger);
                for (int s = 0; s < 3; s++) {
                    grads(p1, s);
                    o1.setLrScale(0.5 + 0.1 * s);
                    o1.step();
                }
                Optimizer.StateDict sd = o1.stateDict();
                assertEquals(kind.userName(), sd.metadata().get("optimizer"));
                assertTrue(sd.metadata().get("param_groups").contains("\"name\":\"head\""), sd.metadata().get("param_groups"));
                // the second optimizer is built with other base lrs: loading restores the dict's, as torch does
                Map<String, Object> otherLr = new HashMap<>(hyper(kind));
                otherLr.put("lr", 0.123);
                List<ParamGroup> plainLr = threeGroups(kind, p2).stream().map(g -> g.with("lr", 0.123)).toList();
                TallyOptimizer o2 = Optimizers.create(kind, otherLr, plainLr);
                o2.allocateState(ledger);
                o2.loadStateDict(throughFile(dir.resolve(c + ".safetensors"), sd, o2.stateDict().tensors(), host));
                for (Parameter p : p1) copyStored(p, p2.get(p1.indexOf(p)));
                assertArrayEquals(o1.learningRates(), o2.learningRates(), c + ": the dict's lrs and schedule factor");
                for (int s = 3; s < 6; s++) { // crosses a projection refresh (gap 2) for GaLore and APOLLO
                    grads(p1, s);
                    grads(p2, s);
                    o1.step();
                    o2.step();
                }
                for (int i = 0; i < p1.size(); i++) {
                    assertArrayEquals(stored(p1.get(i)), stored(p2.get(i)), c + " " + p1.get(i).name());
                    assertEquals(o1.stepOf(p1.get(i)), o2.stepOf(p2.get(i)));
                }
                o1.close();
                o2.close();
            }
        }
    }

    @Test
    void aDictFromAnotherOptimizerOrGroupingIsRefusedWithTheReason() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21);
             MemoryArena b = new MemoryArena(ledger, "b", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21)) {
            List<Parameter> p1 = params(a, 3), p2 = params(b, 3);
            OptimizerKind galore = OptimizerKind.GALORE_ADAMW;
            TallyOptimizer src = Optimizers.create(galore, hyper(galore), threeGroups(galore, p1));
            src.allocateState(ledger);
            Optimizer.StateDict sd = src.stateDict();
            record Case(String what, TallyOptimizer target, String fragment) {}
            List<ParamGroup> three = threeGroups(galore, p2);
            Map<String, Object> rank4 = new HashMap<>(hyper(galore));
            rank4.put("rank", 4L);
            List<Case> cases = List.of(
                    new Case("another optimizer", Optimizers.create(OptimizerKind.APOLLO, hyper(OptimizerKind.APOLLO), threeGroups(OptimizerKind.APOLLO, p2)),
                            "the state dict is from optimizer galore_adamw, this optimizer is apollo"),
                    new Case("fewer groups", Optimizers.create(galore, hyper(galore), List.of(three.get(0), ParamGroup.of(p2.subList(2, 4)))),
                            "the state dict has 3 parameter group(s), this optimizer 2"),
                    new Case("a parameter moved", Optimizers.create(galore, hyper(galore), List.of(three.get(0),
                            ParamGroup.of(p2.subList(3, 4)).named("head"), ParamGroup.of(p2.subList(2, 3)).named("norm"))),
                            "group 1 (head) holds other parameters than the state dict's group 1 (here but not in the dict: [norm.weight]; in the dict but not here: [lm_head.weight])"),
                    new Case("not projected", Optimizers.create(galore, hyper(galore), List.of(ParamGroup.of(p2.subList(0, 2)), three.get(1), three.get(2))),
                            "group 0 is not projected here but projected in the state dict"),
                    new Case("another rank", Optimizers.create(galore, rank4, three),
                            "group 0 (linear): the state dict's hyperparameters give layers.0.self_attn.q_proj.weight state of other shapes or dtypes (rank: 8 in the dict, 4 here)"));
            for (Case c : cases) {
                c.target().allocateState(ledger);
                float[] before = p2.get(0).value().toFloatArray();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.target().loadStateDict(sd), c.what());
                assertTrue(e.getMessage().contains(c.fragment()), c.what() + " -> " + e.getMessage());
                assertTrue(e.getMessage().startsWith(c.target().name() + ": cannot load this state dict: "), e.getMessage());
                assertArrayEquals(before, p2.get(0).value().toFloatArray(), "nothing changed");
                c.target().close();
            }
            Map<String, Tensor> lacking = new LinkedHashMap<>(sd.tensors());
            lacking.remove("norm.weight.exp_avg");
            TallyOptimizer same = Optimizers.create(galore, hyper(galore), three);
            same.allocateState(ledger);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> same.loadStateDict(new Optimizer.StateDict(lacking, sd.metadata())));
            assertTrue(e.getMessage().contains("the state dict lacks state 'norm.weight.exp_avg'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> same.loadStateDict(new Optimizer.StateDict(sd.tensors(), Map.of())));
            assertTrue(e.getMessage().contains("does not say which optimizer wrote it"), e.getMessage());
            same.close();
            src.close();
        }
    }

    @Test
    void addParamGroupBeforeOrAfterBookingEqualsCreatingWithIt() {
        for (OptimizerKind kind : List.of(OptimizerKind.ADAMW, OptimizerKind.ADAMW8BIT, OptimizerKind.GALORE_ADAFACTOR, OptimizerKind.APOLLO_MINI)) {
            MemoryLedger ledger = new MemoryLedger();
            try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21);
                 MemoryArena b = new MemoryArena(ledger, "b", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21);
                 MemoryArena c = new MemoryArena(ledger, "c", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21)) {
                List<Parameter> p1 = params(a, 9), p2 = params(b, 9), p3 = params(c, 9);
                TallyOptimizer whole = Optimizers.create(kind, hyper(kind), threeGroups(kind, p1));
                whole.allocateState(ledger);
                List<ParamGroup> g2 = threeGroups(kind, p2), g3 = threeGroups(kind, p3);
                TallyOptimizer before = Optimizers.create(kind, hyper(kind), g2.subList(0, 1));
                before.addParamGroup(g2.get(1));
                before.addParamGroup(g2.get(2));
                before.allocateState(ledger);
                TallyOptimizer after = Optimizers.create(kind, hyper(kind), g3.subList(0, 2));
                after.allocateState(ledger);
                long booked = ledger.entry(Device.CPU, MemoryCategory.OPTIMIZER_STATE).capacity();
                after.addParamGroup(g3.get(2));
                assertTrue(ledger.entry(Device.CPU, MemoryCategory.OPTIMIZER_STATE).capacity() > booked, "the added group's state is booked in the run's ledger");
                assertEquals(whole.stateBytes(), after.stateBytes());
                for (int s = 0; s < 3; s++) {
                    for (List<Parameter> ps : List.of(p1, p2, p3)) grads(ps, s);
                    whole.step();
                    before.step();
                    after.step();
                }
                for (int i = 0; i < p1.size(); i++) {
                    assertArrayEquals(p1.get(i).value().toFloatArray(), p2.get(i).value().toFloatArray(), kind.userName() + " before " + p1.get(i).name());
                    assertArrayEquals(p1.get(i).value().toFloatArray(), p3.get(i).value().toFloatArray(), kind.userName() + " after " + p1.get(i).name());
                }
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> after.addParamGroup(ParamGroup.of(p3.subList(0, 1))));
                assertTrue(e.getMessage().contains("parameter layers.0.self_attn.q_proj.weight appears in more than one place"), e.getMessage());
                for (TallyOptimizer o : List.of(whole, before, after)) o.close();
            }
        }
    }

    @Test
    void theFlatListFactoryProjectsWhatTheModelDeclaresLinear() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21)) {
            List<Parameter> ps = params(a, 1);
            TallyOptimizer o = Optimizers.create("galore_adamw", Map.of("rank", 8L), ps);
            List<ParamGroup> groups = o.paramGroups();
            assertEquals(2, groups.size());
            assertTrue(groups.get(0).projected() && groups.get(0).params().equals(ps.subList(0, 2)), "the two LINEAR matrices");
            assertTrue(!groups.get(1).projected() && groups.get(1).params().equals(ps.subList(2, 4)), "head and norm");
            assertTrue(o.stateSpecs().get("layers.0.mlp.up_proj.weight").stream().anyMatch(s -> s.name().equals("projection")));
            assertTrue(o.stateSpecs().get("lm_head.weight").stream().noneMatch(s -> s.name().equals("projection")), "a HEAD matrix is not projected");
            assertSame(ps.get(0), o.parameters().get(0));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Optimizers.create("adamw", Map.of(), List.of(ParamGroup.of(ps).withProjection())));
            assertTrue(e.getMessage().contains("adamw has no low-rank projection"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> Optimizers.create("adamw", Map.of(), List.of(ParamGroup.of(ps).with("weight_decy", 0.0).named("no_decay"))));
            assertTrue(e.getMessage().contains("unknown hyperparameter 'weight_decy'"), e.getMessage());
        }
    }
}
