package dev.tally.tests.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.Arena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.WeightFormat;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;
import dev.tally.optim.TallyOptimizer;
import dev.tally.tests.golden.RelativeError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptimizerContractTest {
    @TempDir Path dir;

    /** Two parameters: a projected 96×64 "attn" matrix (8-bit eligible) and a plain vector. */
    private static List<Parameter> params(Arena a, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Parameter> ps = new ArrayList<>();
        for (var e : Map.of("layers.0.self_attn.q_proj.weight", new int[] {96, 64}, "norm.weight", new int[] {64}).entrySet()) {
            Tensor t = a.allocate(e.getKey(), DType.F32, e.getValue());
            double[] v = new double[(int) t.numel()];
            for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * 0.1;
            t.copyFrom(v);
            Parameter p = new Parameter(e.getKey(), t);
            p.setGrad(a.allocate("g." + e.getKey(), DType.F32, e.getValue()));
            ps.add(p);
        }
        ps.sort(java.util.Comparator.comparing(Parameter::name));
        return ps;
    }

    private static void grads(List<Parameter> ps, int step) {
        SplittableRandom r = new SplittableRandom(1000 + step);
        for (Parameter p : ps) {
            double[] g = new double[(int) p.grad().numel()];
            for (int i = 0; i < g.length; i++) g[i] = r.nextGaussian();
            p.grad().copyFrom(g);
        }
    }

    private static Map<String, Object> hyper(OptimizerKind k) {
        Map<String, Object> h = new HashMap<>();
        if (k.projection() != OptimizerKind.Projection.NONE) {
            h.put("rank", 8L);
            h.put("update_proj_gap", 2L);
        }
        if (k == OptimizerKind.CAME) h.put("lr", 1e-3);
        if (k == OptimizerKind.ADAFACTOR || k == OptimizerKind.GALORE_ADAFACTOR) h.put("beta1", 0.9);
        return h;
    }

    @Test
    void stateDictRoundTripContinuesBitIdentically() throws Exception {
        for (OptimizerKind kind : OptimizerKind.values()) {
            MemoryLedger ledger = new MemoryLedger();
            try (Arena a = new Arena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20);
                 Arena b = new Arena(ledger, "b", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
                List<Parameter> p1 = params(a, 3), p2 = params(b, 3);
                TallyOptimizer o1 = Optimizers.create(kind.userName(), hyper(kind), p1);
                o1.allocateState(ledger);
                for (int s = 0; s < 3; s++) {
                    grads(p1, s);
                    o1.step();
                }
                Path file = dir.resolve(kind.userName() + ".safetensors");
                Map<String, Tensor> sd = new LinkedHashMap<>(o1.stateDict());
                for (Parameter p : p1) sd.put("w." + p.name(), p.value());
                SafeTensors.write(file, sd, Map.of());
                TallyOptimizer o2 = Optimizers.create(kind.userName(), hyper(kind), p2);
                o2.allocateState(ledger);
                try (SafeTensors.File f = SafeTensors.open(file); Arena host = new Arena(new MemoryLedger(), "h", MemoryCategory.OTHER, Device.CPU, 1 << 20)) {
                    Map<String, Tensor> load = new LinkedHashMap<>();
                    for (var e : o2.stateDict().entrySet()) {
                        Tensor t = host.allocate(e.getKey(), e.getValue().dtype(), e.getValue().shape());
                        f.readInto(e.getKey(), t);
                        load.put(e.getKey(), t);
                    }
                    o2.loadStateDict(load);
                    for (Parameter p : p2) f.readInto("w." + p.name(), p.value());
                }
                for (int s = 3; s < 6; s++) { // crosses a projection refresh (gap 2) for GaLore and APOLLO
                    grads(p1, s);
                    grads(p2, s);
                    o1.step();
                    o2.step();
                }
                for (int i = 0; i < p1.size(); i++) {
                    assertArrayEquals(p1.get(i).value().toFloatArray(), p2.get(i).value().toFloatArray(), kind.userName() + " " + p1.get(i).name());
                }
            }
        }
    }

    @Test
    void badInputFailsBeforeAnythingIsBooked() {
        MemoryLedger ledger = new MemoryLedger();
        try (Arena a = new Arena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
            List<Parameter> ps = params(a, 1);
            long before = ledger.totalCapacity(Device.CPU);
            record Case(String opt, Map<String, Object> h, String fragment) {}
            for (Case c : List.of(new Case("adamw", Map.of("lr", -1.0), "lr must be >= 0"),
                    new Case("adamw", Map.of("betas", List.of(0.9, 1.0)), "betas[1] must be in [0, 1)"),
                    new Case("galore_adamw", Map.of("rank", 65L), "rank 65 exceeds the smaller dimension 64"),
                    new Case("apollo", Map.of("scale_type", "row"), "scale_type must be channel or tensor"),
                    new Case("came", Map.of(), "lr is required"),
                    new Case("adafactor", Map.of("lr", 0.01), "relative_step"),
                    new Case("adamw", Map.of("momentum", 0.9), "unknown hyperparameter 'momentum'"),
                    new Case("lion", Map.of(), "unknown optimizer 'lion'"))) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create(c.opt(), c.h(), ps));
                assertTrue(e.getMessage().contains(c.fragment()), c + " -> " + e.getMessage());
            }
            assertEquals(before, ledger.totalCapacity(Device.CPU), "nothing booked");
        }
    }

    @Test
    void galoreWithItsOwnSvdMatchesTheReferenceUntilTheFirstRefresh() throws Exception {
        Path golden = Path.of(getClass().getClassLoader().getResource("golden/galore_adamw_64x48_r4.safetensors").toURI());
        try (SafeTensors.File f = SafeTensors.open(golden)) {
            Map<String, Object> h = Json.parseObject(f.metadata().get("hparams"));
            int gap = ((Number) h.get("update_proj_gap")).intValue();
            MemoryLedger ledger = new MemoryLedger();
            try (Arena a = new Arena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
                Tensor w = a.allocate("w", DType.F32, 64, 48), g = a.allocate("g", DType.F32, 64, 48);
                w.copyFrom(f.floats("w0"));
                Parameter p = new Parameter("golden", w);
                p.setGrad(g);
                TallyOptimizer o = Optimizers.create(OptimizerKind.GALORE_ADAMW, h, List.of(p), List.of()); // no injection: own SVD
                o.allocateState(ledger);
                for (int k = 0; k < gap; k++) { // singular-vector signs cancel within one basis
                    g.copyFrom(f.floats("grad." + k));
                    o.step();
                    float[] expect = f.floats("w." + (k + 1)), got = w.toFloatArray();
                    double err = RelativeError.between(got, expect).value();
                    assertTrue(err <= 1e-5, "step " + (k + 1) + ": relative error " + err);
                }
            }
        }
    }

    // ------------------------------------------------------------------ memory formulas (the README table)

    private static long al(long bytes) { return Arena.alignUp(bytes); }

    /** Optimizer-state bytes of one parameter, in closed form, as the README's table states them. */
    static long formula(OptimizerKind k, String name, int[] s, long rank) {
        long n = 1;
        for (int d : s) n *= d;
        boolean projected = k.projection() != OptimizerKind.Projection.NONE && OptimizerKind.projectsByName(name, s.length);
        long rows = s.length == 2 ? s[0] : 0, cols = s[s.length - 1];
        if (projected) {
            long big = Math.max(s[0], s[1]), small = Math.min(s[0], s[1]), low = rank * big;
            return switch (k) {
                case GALORE_ADAMW -> 2 * al(4 * low) + al(4 * rank * small);
                case GALORE_ADAFACTOR -> (s[0] >= s[1] ? al(4L * s[0]) + al(4 * rank) : al(4 * rank) + al(4L * s[1])) + al(4 * rank * small);
                case GALORE_ADAMW8BIT -> (low >= 4096 ? 2 * al(low) + 2 * al(4 * ((low + 255) / 256)) : 2 * al(4 * low)) + al(4 * rank * small);
                case APOLLO, APOLLO_MINI, Q_APOLLO, Q_APOLLO_MINI -> 2 * al(4 * low) + al(4);
                // 8-bit moments + the int4 basis (two codes a byte, fp32 scale and zero per 256) + the previous first
                // singular vector + the lazy-refresh record [gap, count, 5 cosines]
                case Q_GALORE_ADAMW8BIT -> (low >= 4096 ? 2 * al(low) + 2 * al(4 * ((low + 255) / 256)) : 2 * al(4 * low))
                        + al((rank * small + 1) / 2) + 2 * al(4 * ((rank * small + 255) / 256)) + al(4 * small) + al(4 * 7);
                default -> throw new IllegalStateException();
            };
        }
        return switch (k) {
            case ADAMW, GALORE_ADAMW, APOLLO, APOLLO_MINI, Q_APOLLO, Q_APOLLO_MINI -> 2 * al(4 * n);
            case ADAFACTOR, GALORE_ADAFACTOR -> s.length == 2 ? al(4 * rows) + al(4 * cols) : al(4 * n);
            case CAME -> al(4 * n) + (s.length == 2 ? 2 * (al(4 * rows) + al(4 * cols)) : al(4 * n));
            case ADAMW8BIT, GALORE_ADAMW8BIT, Q_GALORE_ADAMW8BIT -> n >= 4096 ? 2 * al(n) + 2 * al(4 * ((n + 255) / 256)) : 2 * al(4 * n);
        };
    }

    @Test
    void bookedOptimizerStateEqualsTheFormulaForEveryPaperConfigOnMeta() {
        for (String model : List.of("llama_60m", "llama_130m", "llama_350m", "llama_1b", "llama_7b")) {
            LlamaConfig c = LlamaConfig.named(model);
            for (OptimizerKind k : OptimizerKind.values()) {
                MemoryLedger ledger = new MemoryLedger();
                try (Arena a = new Arena(ledger, "w", MemoryCategory.WEIGHTS, Device.META, 1L << 50)) {
                    List<Parameter> ps = new ArrayList<>();
                    // the q_* methods get int8 linear weights (group 128), as in their papers; state does not depend on it
                    WeightFormat wf = k.updatesQuantizedWeights() ? WeightFormat.int8(128) : WeightFormat.MODEL_DTYPE;
                    c.parameterShapes().forEach((name, s) -> ps.add(wf.quantizes(name)
                            ? new Parameter(name, QuantizedTensor.allocate(a, name, Shape.of(s), 8, 128), DType.BF16)
                            : new Parameter(name, a.allocate(name, DType.BF16, Shape.of(s)))));
                    long rank = k == OptimizerKind.APOLLO_MINI || k == OptimizerKind.Q_APOLLO_MINI ? 1 : 128;
                    Map<String, Object> h = new HashMap<>();
                    if (k.projection() != OptimizerKind.Projection.NONE) h.put("rank", rank);
                    if (k == OptimizerKind.CAME) h.put("lr", 1e-3);
                    TallyOptimizer o = Optimizers.create(k.userName(), h, ps);
                    o.allocateState(ledger);
                    long expect = (k == OptimizerKind.ADAMW8BIT || k == OptimizerKind.GALORE_ADAMW8BIT
                            || k == OptimizerKind.Q_GALORE_ADAMW8BIT) ? 2 * al(4 * 256) : 0;
                    for (var e : c.parameterShapes().entrySet()) expect += formula(k, e.getKey(), e.getValue(), rank);
                    assertEquals(expect, ledger.entry(Device.META, MemoryCategory.OPTIMIZER_STATE).capacity(), model + " " + k.userName());
                }
            }
        }
    }
}
