package dev.tally.cli;

import dev.tally.engine.DType;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.tally.cli.CliRunner.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** {@code tally export} and {@code train --init-from}: transformers' LLaMA layout out, and back in bit-exactly. */
class HfExportTest {
    @TempDir static Path dir;
    static Path ckpt;

    @BeforeAll
    static void trainTiny() {
        CliRunner.Result r = run(CliRunner.train(dir.resolve("run"), 3));
        assertEquals(0, r.code(), r.err());
        ckpt = dir.resolve("run/checkpoint.safetensors");
    }

    private static Path export(String name, String dtype) {
        Path out = dir.resolve(name);
        CliRunner.Result r = run("export", "--checkpoint", ckpt.toString(), "--out", out.toString(), "--dtype", dtype);
        assertEquals(0, r.code(), r.err());
        return out;
    }

    private static Map<String, Object> config(Path folder) throws IOException {
        return Json.parseObject(Files.readString(folder.resolve("config.json")));
    }

    @Test
    void exportedFolderMatchesTheTransformersConventionList() throws IOException {
        for (String dtype : List.of("f32", "bf16")) {
            Path out = export("conv-" + dtype, dtype);
            Map<String, Object> cfg = config(out);
            Map<String, int[]> expected = new TreeMap<>();
            List<String> lines;
            try (InputStream in = HfExportTest.class.getResourceAsStream("/hf/llama-conventions.txt")) {
                lines = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().filter(l -> !l.startsWith("#") && !l.isBlank()).toList();
            }
            Map<String, Long> sizes = new LinkedHashMap<>();
            cfg.forEach((k, v) -> { if (v instanceof Number n) sizes.put(k, n.longValue()); });
            sizes.put("head_dim", sizes.get("hidden_size") / sizes.get("num_attention_heads"));
            try (SafeTensors.File f = SafeTensors.open(out.resolve("model.safetensors"))) {
                for (String line : lines) {
                    String[] w = line.split(" ", 4);
                    switch (w[0]) {
                        case "config" -> {
                            Object v = cfg.get(w[1]);
                            assertTrue(cfg.containsKey(w[1]), "config.json lacks " + w[1]);
                            boolean typeOk = switch (w[2]) {
                                case "int" -> v instanceof Long;
                                case "number" -> v instanceof Number;
                                case "string" -> v instanceof String;
                                case "bool" -> v instanceof Boolean;
                                case "list" -> v instanceof List;
                                default -> throw new AssertionError(line);
                            };
                            assertTrue(typeOk, w[1] + " = " + v + " is not " + w[2]);
                            if (w.length == 4) assertEquals(w[3], v instanceof List<?> || v instanceof Map<?, ?> ? Json.write(v) : String.valueOf(v), w[1]);
                        }
                        case "metadata" -> assertEquals(w[2], f.metadata().get(w[1]), "metadata " + w[1]);
                        case "tensor" -> {
                            int layers = w[1].contains("{i}") ? sizes.get("num_hidden_layers").intValue() : 1;
                            for (int i = 0; i < layers; i++) {
                                int[] shape = Arrays.stream(w[2].split(",")).mapToInt(d -> (int) Arrays.stream(d.split("\\*"))
                                        .mapToLong(sizes::get).reduce(1, (a, b) -> a * b)).toArray();
                                expected.put(w[1].replace("{i}", Integer.toString(i)), shape);
                            }
                        }
                        default -> fail(line);
                    }
                }
                assertEquals(expected.keySet(), new TreeMap<>(f.entries()).keySet(), "tensor names");
                for (var e : expected.entrySet()) {
                    assertArrayEquals(e.getValue(), f.entry(e.getKey()).shape(), e.getKey());
                    assertEquals(dtype.equals("f32") ? "F32" : "BF16", f.entry(e.getKey()).dtype(), e.getKey());
                }
            }
            assertEquals(dtype.equals("f32") ? "float32" : "bfloat16", cfg.get("torch_dtype"));
        }
    }

    @Test
    void exportedWeightsAreTheCheckpointsBitForBitAndBf16IsItsRounding() throws IOException {
        Path f32 = export("bits-f32", "f32"), bf16 = export("bits-bf16", "bf16");
        try (SafeTensors.File c = SafeTensors.open(ckpt); SafeTensors.File a = SafeTensors.open(f32.resolve("model.safetensors"));
             SafeTensors.File b = SafeTensors.open(bf16.resolve("model.safetensors"))) {
            for (String name : c.entries().keySet()) {
                if (!name.startsWith("model.")) continue;
                String hf = HfLlama.hfName(name.substring(6));
                float[] want = c.floats(name), got = a.floats(hf), half = b.floats(hf);
                assertArrayEquals(want, got, hf);
                for (int i = 0; i < want.length; i++) assertEquals(DType.bf16ToF32(DType.f32ToBf16(want[i])), half[i], hf + "[" + i + "]");
            }
        }
    }

    /** --init-from with a zero learning rate: the run's checkpoint holds the folder's weights unchanged. */
    private static void assertInitFromIsBitExact(Path folder, String name) throws IOException {
        Path run = dir.resolve("init-" + name);
        CliRunner.Result r = run(CliRunner.train(run, 1, "--init-from", folder.toString(), "--opt", "lr=0", "--warmup", "0"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("initialised from " + folder), r.out());
        try (SafeTensors.File c = SafeTensors.open(ckpt); SafeTensors.File d = SafeTensors.open(run.resolve("checkpoint.safetensors"))) {
            for (String n : c.entries().keySet()) if (n.startsWith("model.")) assertArrayEquals(c.floats(n), d.floats(n), name + " " + n);
        }
        // the run resumes from its own checkpoint: the config travelled as run/model.json
        CliRunner.Result resumed = run("train", "--resume", run.resolve("checkpoint.safetensors").toString(), "--steps", "2", "--out",
                run.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, resumed.code(), resumed.err());
    }

    @Test
    void trainInitFromLoadsAnExportedFolderBitExactly() throws IOException {
        assertInitFromIsBitExact(export("roundtrip", "f32"), "single");
    }

    /** A folder as transformers writes large models: shards plus model.safetensors.index.json; one shard in bf16. */
    @Test
    void shardedFoldersLoad() throws IOException {
        Path single = export("to-shard", "f32"), sharded = dir.resolve("sharded");
        Files.createDirectories(sharded);
        Files.copy(single.resolve("config.json"), sharded.resolve("config.json"));
        Map<String, Object> weightMap = new TreeMap<>();
        try (SafeTensors.File f = SafeTensors.open(single.resolve("model.safetensors"));
             dev.tally.engine.MemoryArena host = new dev.tally.engine.MemoryArena(new dev.tally.engine.MemoryLedger(), "t",
                     dev.tally.engine.MemoryCategory.OTHER, dev.tally.engine.Device.CPU, 64L << 20)) {
            List<String> names = new ArrayList<>(f.entries().keySet());
            Map<String, dev.tally.engine.Tensor> one = new LinkedHashMap<>(), two = new LinkedHashMap<>();
            for (int i = 0; i < names.size(); i++) {
                var e = f.entry(names.get(i));
                var t = host.allocate(e.name(), DType.F32, e.shape());
                f.readInto(e.name(), t);
                (i % 2 == 0 ? one : two).put(e.name(), t);
                weightMap.put(e.name(), i % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
            }
            SafeTensors.write(sharded.resolve("model-00001-of-00002.safetensors"), one, Map.of("format", "pt"));
            SafeTensors.write(sharded.resolve("model-00002-of-00002.safetensors"), two, Map.of("format", "pt"));
        }
        Files.writeString(sharded.resolve("model.safetensors.index.json"),
                Json.write(Map.of("metadata", Map.of("total_size", 1L), "weight_map", weightMap)));
        assertInitFromIsBitExact(sharded, "sharded");
    }

    private static Path variant(String name, String configEdit, boolean addBias) throws IOException {
        Path src = dir.resolve("variants-base");
        if (!Files.exists(src)) export("variants-base", "f32");
        Path v = dir.resolve(name);
        Files.createDirectories(v);
        Files.copy(src.resolve("model.safetensors"), v.resolve("model.safetensors"));
        String cfg = Files.readString(src.resolve("config.json")).strip();
        if (!configEdit.isEmpty()) {
            Map<String, Object> m = Json.parseObject(cfg);
            m.putAll(Json.parseObject(configEdit));
            cfg = Json.write(m);
        }
        Files.writeString(v.resolve("config.json"), cfg);
        if (addBias) {
            try (SafeTensors.File f = SafeTensors.open(src.resolve("model.safetensors"));
                 dev.tally.engine.MemoryArena host = new dev.tally.engine.MemoryArena(new dev.tally.engine.MemoryLedger(), "t",
                         dev.tally.engine.MemoryCategory.OTHER, dev.tally.engine.Device.CPU, 64L << 20)) {
                Map<String, dev.tally.engine.Tensor> all = new LinkedHashMap<>();
                for (var e : f.entries().values()) {
                    var t = host.allocate(e.name(), DType.F32, e.shape());
                    f.readInto(e.name(), t);
                    all.put(e.name(), t);
                }
                all.put("model.layers.0.self_attn.q_proj.bias", host.allocate("b", DType.F32, 64));
                SafeTensors.write(v.resolve("model.safetensors"), all, Map.of("format", "pt"));
            }
        }
        return v;
    }

    @Test
    void unsupportedArchitecturesAreRefusedWithTheirReason() throws IOException {
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("{\"tie_word_embeddings\": true}", "tie_word_embeddings is true");
        cases.put("{\"attention_bias\": true}", "attention_bias is true; Tally's layers have no biases");
        cases.put("{\"mlp_bias\": true}", "mlp_bias is true");
        cases.put("{\"hidden_act\": \"gelu\"}", "hidden_act gelu is not supported");
        cases.put("{\"num_key_value_heads\": 2}", "num_key_value_heads 2 differs from num_attention_heads 4 (grouped-query attention is not supported)");
        cases.put("{\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}", "rope_scaling {\"rope_type\":\"llama3\",\"factor\":8.0} is not supported");
        cases.put("{\"model_type\": \"mistral\"}", "model_type is mistral; only llama is supported");
        int k = 0;
        for (var c : cases.entrySet()) {
            Path v = variant("bad" + k++, c.getKey(), false);
            CliRunner.Result r = run(CliRunner.train(dir.resolve("never" + k), 1, "--init-from", v.toString()));
            assertEquals(2, r.code(), c.getKey());
            assertTrue(r.err().contains(c.getValue()) && r.err().contains("config.json"), c.getKey() + " -> " + r.err());
            assertTrue(!Files.exists(dir.resolve("never" + k).resolve("checkpoint.safetensors")));
        }
        Path biased = variant("bias-tensor", "", true);
        CliRunner.Result r = run(CliRunner.train(dir.resolve("never-bias"), 1, "--init-from", biased.toString()));
        assertEquals(2, r.code());
        assertTrue(r.err().contains("biases are not supported") && r.err().contains("model.layers.0.self_attn.q_proj.bias"), r.err());
        Path empty = dir.resolve("no-weights");
        Files.createDirectories(empty);
        Files.copy(biased.resolve("config.json"), empty.resolve("config.json"));
        r = run(CliRunner.train(dir.resolve("never-empty"), 1, "--init-from", empty.toString()));
        assertEquals(2, r.code());
        assertTrue(r.err().contains("no model.safetensors or model.safetensors.index.json"), r.err());
        r = run("export", "--checkpoint", ckpt.toString(), "--out", dir.resolve("x").toString(), "--dtype", "f16");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--dtype must be bf16 or f32"), r.err());
    }
}
