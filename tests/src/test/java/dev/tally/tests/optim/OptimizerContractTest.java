package dev.tally.tests.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.GroupRounding;
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
import dev.tally.optim.ParamGroup;
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

    /**
     * Four parameters as a model declares them: two 96×64 / 64×80 LINEAR matrices (projected under GaLore and APOLLO,
     * 8-bit eligible), a 40×64 HEAD matrix and a NORM vector.
     */
    static List<Parameter> params(MemoryArena a, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Parameter> ps = new ArrayList<>();
        record Spec(String name, int[] shape, Parameter.Role role) {}
        for (Spec e : List.of(new Spec("layers.0.self_attn.q_proj.weight", new int[] {96, 64}, Parameter.Role.LINEAR),
                new Spec("layers.0.mlp.up_proj.weight", new int[] {64, 80}, Parameter.Role.LINEAR),
                new Spec("lm_head.weight", new int[] {40, 64}, Parameter.Role.HEAD),
                new Spec("norm.weight", new int[] {64}, Parameter.Role.NORM))) {
            Tensor t = a.allocate(e.name(), DType.F32, e.shape());
            double[] v = new double[(int) t.numel()];
            for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * 0.1;
            t.copyFrom(v);
            Parameter p = new Parameter(e.name(), t, e.role());
            p.setGrad(a.allocate("g." + e.name(), DType.F32, e.shape()));
            ps.add(p);
        }
        return ps;
    }

    /**
     * The same four parameters with the two LINEAR matrices stored as int8 codes (groups of 128, rounded to nearest from
     * the values {@link #params} draws), as the q_* methods train them; head and norm stay fp32.
     */
    static List<Parameter> int8Params(MemoryArena a, long seed) {
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : params(a, seed)) {
            if (p.role() != Parameter.Role.LINEAR) {
                out.add(p);
                continue;
            }
            QuantizedTensor q = QuantizedTensor.allocate(a, "q." + p.name(), p.value().shape(), 8, 128);
            q.quantize(p.value(), GroupRounding.NEAREST);
            Parameter qp = new Parameter(p.name(), q, DType.F32, p.role());
            qp.setGrad(p.grad());
            out.add(qp);
        }
        return out;
    }

    /** Everything a parameter stores: its values, or an int8 weight's codes, scales and zeros one after the other. */
    static float[] stored(Parameter p) {
        if (!p.isQuantized()) return p.value().toFloatArray();
        float[] c = p.quantized().codes().toFloatArray(), s = p.quantized().scales().toFloatArray(), z = p.quantized().zeros().toFloatArray();
        float[] out = java.util.Arrays.copyOf(c, c.length + s.length + z.length);
        System.arraycopy(s, 0, out, c.length, s.length);
        System.arraycopy(z, 0, out, c.length + s.length, z.length);
        return out;
    }

    /** Copies what {@code from} stores into {@code to} (the same storage format). */
    static void copyStored(Parameter from, Parameter to) {
        if (!from.isQuantized()) {
            to.value().copyFrom(from.value().toFloatArray());
            return;
        }
        to.quantized().codes().copyFrom(from.quantized().codes().toFloatArray());
        to.quantized().scales().copyFrom(from.quantized().scales().toFloatArray());
        to.quantized().zeros().copyFrom(from.quantized().zeros().toFloatArray());
    }

    static void grads(List<Parameter> ps, int step) {
        SplittableRandom r = new SplittableRandom(1000 + step);
        for (Parameter p : ps) {
            double[] g = new double[(int) p.grad().numel()];
            for (int i = 0; i < g.length; i++) g[i] = r.nextGaussian();
            p.grad().copyFrom(g);
        }
    }

    static Map<String, Object> hyper(OptimizerKind k) {
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
    void badInputFailsBeforeAnythingIsBooked() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
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
    void int8WeightsAreRefusedByEveryOptimizerThatCannotReQuantizeThem() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 21)) {
            List<Parameter> ps = int8Params(a, 1);
            long before = ledger.totalCapacity(Device.CPU);
            for (OptimizerKind k : OptimizerKind.values()) {
                if (k.updatesQuantizedWeights()) {
                    Optimizers.create(k.userName(), hyper(k), ps).close(); // accepted projected (the papers' grouping)
                    continue;
                }
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create(k.userName(), hyper(k), ps));
                assertTrue(e.getMessage().contains(k.userName() + " cannot update Parameter[layers.0.self_attn.q_proj.weight int8/128")
                        && e.getMessage().contains("int8 weights need q_apollo, q_apollo_mini or q_galore_adamw8bit"), k + " -> " + e.getMessage());
                // in a group of its own too, whatever the group: the group is named
                e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create(k, hyper(k),
                        List.of(ParamGroup.of(ps.subList(2, 4)), ParamGroup.of(ps.subList(0, 2)).named("int8"))));
                assertTrue(e.getMessage().contains("(group 1 (int8))"), k + " -> " + e.getMessage());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("q_galore_adamw8bit",
                    Map.of("rank", 8L, "proj_quant_bits", 3L), ps));
            assertTrue(e.getMessage().contains("proj_quant_bits must be 4 or 8, got 3"), e.getMessage());
            assertEquals(before, ledger.totalCapacity(Device.CPU), "nothing booked");
            // and in a plain group: the inner rule runs on the dequantized weight, which is then re-quantized
            for (OptimizerKind k : List.of(OptimizerKind.Q_APOLLO_MINI, OptimizerKind.Q_GALORE_ADAMW8BIT)) {
                TallyOptimizer o = Optimizers.create(k, hyper(k), List.of(ParamGroup.of(ps)));
                o.allocateState(ledger);
                float[] codes = ps.get(0).value().toFloatArray();
                grads(ps, 0);
                o.step();
                assertTrue(!java.util.Arrays.equals(codes, ps.get(0).value().toFloatArray()), k + ": the plain group's int8 codes moved");
                assertTrue(o.stateSpecs().get(ps.get(0).name()).stream().noneMatch(x -> x.name().startsWith("projection")), "not projected");
                o.close();
            }
        }
    }

    @Test
    void galoreWithItsOwnSvdMatchesTheReferenceUntilTheFirstRefresh() throws Exception {
        Path golden = Path.of(getClass().getClassLoader().getResource("golden/galore_adamw_64x48_r4.safetensors").toURI());
        try (SafeTensors.File f = SafeTensors.open(golden)) {
            Map<String, Object> h = Json.parseObject(f.metadata().get("hparams"));
            int gap = ((Number) h.get("update_proj_gap")).intValue();
            MemoryLedger ledger = new MemoryLedger();
            try (MemoryArena a = new MemoryArena(ledger, "a", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
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

    private static long al(long bytes) { return MemoryArena.alignUp(bytes); }

    /** Optimizer-state bytes of one parameter, in closed form, as the README's table states them. */
    static long formula(OptimizerKind k, Parameter.Role role, int[] s, long rank) {
        long n = 1;
        for (int d : s) n *= d;
        boolean projected = k.projects() && role == Parameter.Role.LINEAR;
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
                try (MemoryArena a = new MemoryArena(ledger, "w", MemoryCategory.WEIGHTS, Device.META, 1L << 50)) {
                    List<Parameter> ps = new ArrayList<>();
                    // the q_* methods get int8 linear weights (group 128), as in their papers; state does not depend on it
                    WeightFormat wf = k.updatesQuantizedWeights() ? WeightFormat.int8(128) : WeightFormat.MODEL_DTYPE;
                    Map<String, Parameter.Role> roles = c.parameterRoles();
                    c.parameterShapes().forEach((name, s) -> ps.add(wf.quantizes(name)
                            ? new Parameter(name, QuantizedTensor.allocate(a, name, Shape.of(s), 8, 128), DType.BF16, roles.get(name))
                            : new Parameter(name, a.allocate(name, DType.BF16, Shape.of(s)), roles.get(name))));
                    long rank = k == OptimizerKind.APOLLO_MINI || k == OptimizerKind.Q_APOLLO_MINI ? 1 : 128;
                    Map<String, Object> h = new HashMap<>();
                    if (k.projection() != OptimizerKind.Projection.NONE) h.put("rank", rank);
                    if (k == OptimizerKind.CAME) h.put("lr", 1e-3);
                    TallyOptimizer o = Optimizers.create(k.userName(), h, ps);
                    o.allocateState(ledger);
                    long expect = (k == OptimizerKind.ADAMW8BIT || k == OptimizerKind.GALORE_ADAMW8BIT
                            || k == OptimizerKind.Q_GALORE_ADAMW8BIT) ? 2 * al(4 * 256) : 0;
                    for (var e : c.parameterShapes().entrySet()) expect += formula(k, roles.get(e.getKey()), e.getValue(), rank);
                    assertEquals(expect, ledger.entry(Device.META, MemoryCategory.OPTIMIZER_STATE).capacity(), model + " " + k.userName());
                }
            }
        }
    }
}
