package dev.tally.cli;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.LlamaModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Hugging Face {@code transformers} LLaMA folders ({@code config.json} + {@code model.safetensors}, or shards listed in
 * {@code model.safetensors.index.json}), out of and into Tally.
 *
 * <p>Conventions matched (transformers' {@code modeling_llama.py} / {@code configuration_llama.py}): parameter names
 * are Tally's with a {@code model.} prefix except {@code lm_head.weight}; every Linear weight is [out, in] as in
 * {@code nn.Linear}, which is how Tally stores them; RoPE is the rotate-half layout (dimension i pairs with i + d/2,
 * inverse frequency base^(-2i/d)), which Tally's kernel implements, so q and k need no permutation (a permutation is
 * only needed for Meta's original interleaved checkpoints); attention heads are contiguous slices of the projection
 * outputs ([T, H, Dh]); RMSNorm multiplies the normalised activation by the gain; the MLP is down(silu(gate) · up).
 * What Tally does not implement is refused by name: tied embeddings, biases, other activations, grouped-query attention
 * (num_key_value_heads ≠ num_attention_heads), rope_scaling, a head_dim other than hidden/heads, pretraining_tp ≠ 1.
 */
final class HfLlama {
    private HfLlama() {}

    static final String CONFIG = "config.json", WEIGHTS = "model.safetensors", INDEX = "model.safetensors.index.json";

    /** The transformers name of a Tally parameter. */
    static String hfName(String tallyName) {
        return tallyName.equals("lm_head.weight") ? tallyName : "model." + tallyName;
    }

    /** config.json as transformers' LlamaConfig writes it, for a Tally config and storage dtype. */
    static Map<String, Object> configJson(LlamaConfig c, DType dtype) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("LlamaForCausalLM"));
        m.put("model_type", "llama");
        m.put("hidden_size", (long) c.hidden());
        m.put("intermediate_size", (long) c.intermediate());
        m.put("num_attention_heads", (long) c.heads());
        m.put("num_key_value_heads", (long) c.heads());
        m.put("head_dim", (long) c.headDim());
        m.put("num_hidden_layers", (long) c.layers());
        m.put("vocab_size", (long) c.vocab());
        m.put("max_position_embeddings", (long) c.maxSequence());
        m.put("rms_norm_eps", c.rmsNormEps());
        m.put("rope_theta", c.ropeBase());
        m.put("rope_scaling", null);
        m.put("hidden_act", "silu");
        m.put("initializer_range", c.initStd());
        m.put("tie_word_embeddings", false);
        m.put("attention_bias", false);
        m.put("attention_dropout", 0.0);
        m.put("mlp_bias", false);
        m.put("pretraining_tp", 1L);
        m.put("use_cache", true);
        m.put("torch_dtype", switch (dtype) {
            case F32 -> "float32";
            case BF16 -> "bfloat16";
            default -> throw new IllegalArgumentException("export dtype must be f32 or bf16, got " + dtype);
        });
        return m;
    }

    /** Writes {@code model}'s weights (converted to {@code dtype}) and config.json into {@code dir}. */
    static void export(LlamaModel model, DType dtype, Path dir) throws IOException {
        Map<String, Object> config = configJson(model.config(), dtype); // validates dtype first
        Files.createDirectories(dir);
        long bytes = 0;
        for (Parameter p : model.parameters()) bytes += MemoryArena.bookedBytes(dtype, p.value().shape());
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (MemoryArena out = new MemoryArena(new MemoryLedger(), "export", MemoryCategory.OTHER, Device.CPU, bytes)) {
            for (Parameter p : model.parameters()) {
                Tensor t = out.allocate(hfName(p.name()), dtype, p.value().dims());
                t.ops().copy(p.value(), t);
                tensors.put(hfName(p.name()), t);
            }
            SafeTensors.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt")); // transformers refuses files without format=pt
        }
        Files.writeString(dir.resolve(CONFIG), Json.write(config) + "\n");
    }

    /** The Tally config of a transformers LLaMA folder; anything Tally cannot compute the same way is refused with its reason. */
    static LlamaConfig config(Path dir) throws IOException {
        Path file = dir.resolve(CONFIG);
        if (!Files.isRegularFile(file)) throw new IOException("no " + CONFIG + " in " + dir);
        Map<String, Object> m = Json.parseObject(Files.readString(file));
        String where = file.toString();
        Object type = m.get("model_type");
        if (!"llama".equals(type)) throw new IllegalArgumentException(where + ": model_type is " + type + "; only llama is supported");
        if (m.get("architectures") instanceof List<?> a && !a.contains("LlamaForCausalLM")) {
            throw new IllegalArgumentException(where + ": architectures " + a + " do not include LlamaForCausalLM");
        }
        Object act = m.getOrDefault("hidden_act", "silu");
        if (!"silu".equals(act)) throw new IllegalArgumentException(where + ": hidden_act " + act + " is not supported (Tally's MLP is SwiGLU: silu)");
        if (Boolean.TRUE.equals(m.get("tie_word_embeddings"))) {
            throw new IllegalArgumentException(where + ": tie_word_embeddings is true; Tally keeps lm_head separate from embed_tokens");
        }
        for (String bias : List.of("attention_bias", "mlp_bias")) {
            if (Boolean.TRUE.equals(m.get(bias))) throw new IllegalArgumentException(where + ": " + bias + " is true; Tally's layers have no biases");
        }
        if (m.get("rope_scaling") != null) {
            throw new IllegalArgumentException(where + ": rope_scaling " + Json.write(m.get("rope_scaling")) + " is not supported (plain RoPE only)");
        }
        int hidden = intKey(m, "hidden_size", where), heads = intKey(m, "num_attention_heads", where);
        if (m.get("num_key_value_heads") instanceof Number kv && kv.intValue() != heads) {
            throw new IllegalArgumentException(where + ": num_key_value_heads " + kv + " differs from num_attention_heads " + heads
                    + " (grouped-query attention is not supported)");
        }
        if (m.get("head_dim") instanceof Number hd && heads > 0 && hd.intValue() != hidden / heads) {
            throw new IllegalArgumentException(where + ": head_dim " + hd + " is not hidden_size / num_attention_heads = " + hidden / heads);
        }
        if (m.get("pretraining_tp") instanceof Number tp && tp.intValue() != 1) {
            throw new IllegalArgumentException(where + ": pretraining_tp " + tp + " is not supported (1 only)");
        }
        String name = dir.toAbsolutePath().normalize().getFileName() == null ? "hf" : dir.toAbsolutePath().normalize().getFileName().toString();
        return new LlamaConfig(name, hidden, intKey(m, "intermediate_size", where), heads, intKey(m, "num_hidden_layers", where),
                intKey(m, "vocab_size", where), m.get("max_position_embeddings") instanceof Number n ? n.intValue() : 2048,
                m.get("rms_norm_eps") instanceof Number n ? n.doubleValue() : 1e-6,
                m.get("rope_theta") instanceof Number n ? n.doubleValue() : 10000,
                m.get("initializer_range") instanceof Number n ? n.doubleValue() : 0.02);
    }

    private static int intKey(Map<String, Object> m, String key, String where) {
        if (!(m.get(key) instanceof Number n)) throw new IllegalArgumentException(where + ": missing or non-numeric '" + key + "'");
        return n.intValue();
    }

    /** The config in the form {@code --model FILE.json} reads (LlamaConfig.fromJson's keys). */
    static String tallyConfigJson(LlamaConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("hidden_size", (long) c.hidden());
        m.put("intermediate_size", (long) c.intermediate());
        m.put("num_attention_heads", (long) c.heads());
        m.put("num_hidden_layers", (long) c.layers());
        m.put("vocab_size", (long) c.vocab());
        m.put("max_position_embeddings", (long) c.maxSequence());
        m.put("rms_norm_eps", c.rmsNormEps());
        m.put("rope_theta", c.ropeBase());
        m.put("initializer_range", c.initStd());
        return Json.write(m) + "\n";
    }

    /** Which safetensors file holds each tensor: one file, or the shards of an index (as transformers writes them). */
    static Map<String, Path> weightFiles(Path dir) throws IOException {
        Path single = dir.resolve(WEIGHTS), index = dir.resolve(INDEX);
        Map<String, Path> where = new TreeMap<>();
        if (Files.isRegularFile(index)) {
            if (!(Json.parseObject(Files.readString(index)).get("weight_map") instanceof Map<?, ?> map)) {
                throw new IOException(index + ": no weight_map object");
            }
            for (Map.Entry<?, ?> e : map.entrySet()) where.put(e.getKey().toString(), dir.resolve(e.getValue().toString()));
        } else if (Files.isRegularFile(single)) {
            try (SafeTensors.File f = SafeTensors.open(single)) {
                for (String n : f.entries().keySet()) where.put(n, single);
            }
        } else {
            throw new IOException("no " + WEIGHTS + " or " + INDEX + " in " + dir
                    + (Files.exists(dir.resolve("pytorch_model.bin")) ? " (pytorch_model.bin is not read: save with safe_serialization=True)" : ""));
        }
        return where;
    }

    /**
     * Loads a transformers folder's weights into {@code model} (whose config came from {@link #config}), converting
     * bf16/f16/f32 to the model's dtype. Every parameter must be present with its shape; tensors Tally has no place for
     * (biases, anything unknown) are refused; rotary inv_freq buffers that old checkpoints carry are ignored.
     */
    static void load(Path dir, LlamaModel model) throws IOException {
        Map<String, Path> files = weightFiles(dir);
        Map<String, Parameter> wanted = new LinkedHashMap<>();
        for (Parameter p : model.parameters()) wanted.put(hfName(p.name()), p);
        List<String> extra = new ArrayList<>();
        for (String n : files.keySet()) if (!wanted.containsKey(n) && !n.endsWith("rotary_emb.inv_freq")) extra.add(n);
        if (!extra.isEmpty()) {
            boolean biases = extra.stream().anyMatch(n -> n.endsWith(".bias"));
            throw new IllegalArgumentException(dir + ": tensors Tally's LLaMA has no place for" + (biases ? " (biases are not supported)" : "")
                    + ": " + (extra.size() > 5 ? extra.subList(0, 5) + " and " + (extra.size() - 5) + " more" : extra));
        }
        List<String> missing = wanted.keySet().stream().filter(n -> !files.containsKey(n)).toList();
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(dir + ": missing tensors " + (missing.size() > 5 ? missing.subList(0, 5) + " and " + (missing.size() - 5) + " more" : missing)
                    + (missing.contains("lm_head.weight") ? " (no lm_head.weight: tied embeddings are not supported)" : ""));
        }
        Map<Path, SafeTensors.File> open = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, Parameter> e : wanted.entrySet()) {
                Path f = files.get(e.getKey());
                SafeTensors.File st = open.get(f);
                if (st == null) open.put(f, st = SafeTensors.open(f));
                copyInto(st, e.getKey(), e.getValue().value());
            }
        } finally {
            for (SafeTensors.File f : open.values()) f.close();
        }
    }

    private static void copyInto(SafeTensors.File f, String name, Tensor dst) {
        SafeTensors.Entry e = f.entry(name);
        if (!java.util.Arrays.equals(e.shape(), dst.dims())) {
            throw new IllegalArgumentException(f.path() + ": tensor '" + name + "' has shape " + java.util.Arrays.toString(e.shape())
                    + " but the config implies " + dst.shape());
        }
        DType src = switch (e.dtype()) {
            case "F32" -> DType.F32;
            case "BF16" -> DType.BF16;
            case "F16" -> DType.F16;
            default -> throw new IllegalArgumentException(f.path() + ": tensor '" + name + "' is " + e.dtype() + "; expected F32, BF16 or F16");
        };
        if (src == dst.dtype()) {
            f.readInto(name, dst);
            return;
        }
        try (MemoryArena host = new MemoryArena(new MemoryLedger(), "import", MemoryCategory.OTHER, Device.CPU, MemoryArena.bookedBytes(src, dst.shape()))) {
            Tensor t = host.allocate(name, src, dst.dims());
            f.readInto(name, t);
            dst.ops().copy(t, dst);
        }
    }
}
