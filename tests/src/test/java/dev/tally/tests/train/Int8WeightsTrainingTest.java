package dev.tally.tests.train;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.WeightFormat;
import dev.tally.models.train.LrSchedule;
import dev.tally.models.train.Trainer;
import dev.tally.optim.Optimizers;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training with int8 linear weights (Q-APOLLO / Q-GaLore): the tiny model learns the bundled corpus, runs are
 * reproducible, and the plan (on META) books exactly what the CPU run books.
 */
class Int8WeightsTrainingTest {
    static final int BATCH = 8, SEQ = 64;

    static Trainer trainer(String optimizer, WeightFormat wf, boolean layerwise, Device device, MemoryLedger ledger) {
        Trainer.Settings s = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, BATCH, SEQ, 1, "cce", layerwise, device, 42, 0)
                .withWeights(wf);
        Map<String, Object> h = hyper(optimizer);
        return new Trainer(s, params -> Optimizers.create(optimizer, h, params), ledger);
    }

    static Map<String, Object> hyper(String optimizer) {
        Map<String, Object> h = new HashMap<>(Map.of("lr", 0.01));
        if (optimizer.equals("q_apollo")) h.put("rank", 16L); // the tiny model is 64 wide
        if (optimizer.contains("galore")) {
            h.put("rank", 16L);
            h.put("update_proj_gap", 50L);
        }
        return h;
    }

    /** Mean loss of the first and of the last 5 of {@code steps} steps on the bundled corpus. */
    static double[] train(Trainer t, int steps) throws Exception {
        TextData data = TextData.load(TextData.BUNDLED, new Tokenizer.Bytes(), 0.05);
        LrSchedule sched = new LrSchedule(steps / 10, steps, 0.1);
        double first = 0, last = 0;
        for (int step = 0; step < steps; step++) {
            long[][] b = data.trainBatch(42, step, BATCH, SEQ);
            double l = t.step(new long[][] {b[0]}, new long[][] {b[1]}, sched.factor(step));
            if (step < 5) first += l / 5;
            if (step >= steps - 5) last += l / 5;
        }
        return new double[] {first, last};
    }

    @Test
    void tinyModelWithInt8WeightsLearnsTheBundledCorpus() throws Exception {
        int steps = 100;
        double[] int8, full;
        MemoryLedger ledger = new MemoryLedger();
        try (Trainer t = trainer("q_apollo_mini", WeightFormat.int8(128), false, Device.CPU, ledger)) {
            System.out.print(t.planReport());
            assertTrue(t.model().parameter("layers.0.mlp.down_proj.weight").isQuantized());
            assertTrue(!t.model().parameter("embed_tokens.weight").isQuantized() && !t.model().parameter("norm.weight").isQuantized());
            int8 = train(t, steps);
            assertEquals(t.activationPlan().size(), t.activationArena().highWater(), "planned = measured activations (dequantized transients included)");
        }
        try (Trainer t = trainer("q_apollo_mini", WeightFormat.MODEL_DTYPE, false, Device.CPU, new MemoryLedger())) {
            full = train(t, steps);
        }
        System.out.printf("q_apollo_mini, tiny, %d steps of %dx%d on the bundled corpus: int8/g128 loss %.3f -> %.3f; fp32 weights %.3f -> %.3f%n",
                steps, BATCH, SEQ, int8[0], int8[1], full[0], full[1]);
        assertTrue(int8[0] > 5.0, "starts near ln(256) = 5.55: " + int8[0]);
        assertTrue(int8[1] < int8[0] - 2.0, "int8 weights: loss falls by more than 2 nats: " + int8[0] + " -> " + int8[1]);
        assertTrue(int8[1] < full[1] + 0.3, "int8 ends within 0.3 nats of fp32 weights: " + int8[1] + " vs " + full[1]);
    }

    @Test
    void int8RunsAreReproducible() throws Exception {
        long[][] codes = new long[2][];
        double[][] losses = new double[2][];
        for (int run = 0; run < 2; run++) {
            try (Trainer t = trainer("q_apollo_mini", WeightFormat.int8(256), false, Device.CPU, new MemoryLedger())) {
                losses[run] = train(t, 10);
                codes[run] = t.model().parameter("layers.1.self_attn.o_proj.weight").value().toLongArray();
            }
        }
        assertArrayEquals(codes[0], codes[1], "same seed, same codes");
        assertArrayEquals(losses[0], losses[1]);
    }

    @Test
    void qGaloreWithInt8WeightsLearnsLayerwise() throws Exception {
        try (Trainer t = trainer("q_galore_adamw8bit", WeightFormat.int8(256), true, Device.CPU, new MemoryLedger())) {
            double[] l = train(t, 30);
            System.out.printf("q_galore_adamw8bit layer-wise, int8/g256, 30 steps: loss %.3f -> %.3f%n", l[0], l[1]);
            assertTrue(l[1] < l[0] - 1.0, "loss falls by more than 1 nat in 30 steps: " + l[0] + " -> " + l[1]);
        }
    }

    @Test
    void metaBooksWhatTheCpuBooksForInt8Models() {
        for (String opt : List.of("q_apollo", "q_apollo_mini", "q_galore_adamw8bit")) {
            for (boolean layerwise : new boolean[] {false, true}) {
                for (int group : new int[] {128, 256}) {
                    MemoryLedger cpu = new MemoryLedger(), meta = new MemoryLedger();
                    WeightFormat wf = WeightFormat.int8(group);
                    try (Trainer a = trainer(opt, wf, layerwise, Device.CPU, cpu); Trainer b = trainer(opt, wf, layerwise, Device.META, meta)) {
                        for (MemoryCategory c : MemoryCategory.values()) {
                            assertEquals(cpu.entry(Device.CPU, c).capacity(), meta.entry(Device.META, c).capacity(),
                                    opt + " g" + group + (layerwise ? " layer-wise " : " ") + c.label());
                        }
                        // weights: 7 int8 matrices per layer with fp32 scale + zero per group, the rest fp32
                        LlamaConfig cfg = LlamaConfig.named("tiny");
                        long expect = 0;
                        for (var e : cfg.parameterShapes().entrySet()) {
                            long n = 1;
                            for (int d : e.getValue()) n *= d;
                            expect += wf.quantizes(e.getKey()) ? align(n) + 2 * align(4 * ((n + group - 1) / group)) : align(4 * n);
                        }
                        assertEquals(expect, meta.entry(Device.META, MemoryCategory.WEIGHTS).capacity(), "int8 weight bytes");
                    }
                }
            }
        }
    }

    @Test
    void anInt8RunBuiltFromItsPlanBooksThePlanAndIsTheDirectRun() throws Exception {
        for (String opt : List.of("q_apollo", "q_galore_adamw8bit")) {
            Trainer.Settings s = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, BATCH, SEQ, 1, "cce", false, Device.CPU, 42, 0)
                    .withWeights(WeightFormat.int8(128));
            Map<String, Object> h = hyper(opt);
            Trainer.Plan plan = Trainer.plan(s, params -> Optimizers.create(opt, h, params));
            assertTrue(plan.report().contains("int8/g128 linear weights"), "the plan is made for int8 weights: " + plan.report());
            MemoryLedger planned = new MemoryLedger();
            try (Trainer t = new Trainer(plan, planned); Trainer d = trainer(opt, WeightFormat.int8(128), false, Device.CPU, new MemoryLedger())) {
                for (MemoryCategory c : MemoryCategory.values()) {
                    assertEquals(plan.bytes().get(c), planned.entry(Device.CPU, c).capacity(), opt + " planned = booked: " + c.label());
                }
                assertTrue(t.model().parameter("layers.0.mlp.up_proj.weight").isQuantized());
                double[] a = train(t, 6), b = train(d, 6);
                assertArrayEquals(b, a, opt + ": a planned int8 run is the run built directly");
            }
        }
    }

    @Test
    void optimizersThatCannotRequantizeRefuseInt8Weights() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> trainer("apollo_mini", WeightFormat.int8(128), false, Device.META, new MemoryLedger()).close());
        assertTrue(e.getMessage().contains("apollo_mini cannot update") && e.getMessage().contains("q_apollo_mini"), e.getMessage());
    }

    private static long align(long b) { return (b + 255) / 256 * 256; }
}
