package dev.tally.models.llama;

import dev.tally.autograd.Parameter;
import dev.tally.engine.io.Json;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A LLaMA-style decoder: RMSNorm (eps 1e-6), RoPE (base 10000), SwiGLU MLP, causal attention, no biases, untied head,
 * weights initialised N(0, 0.02²). The paper configurations (GaLore / APOLLO configs/*.json) are available by name.
 */
public record LlamaConfig(String name, int hidden, int intermediate, int heads, int layers, int vocab, int maxSequence,
                          double rmsNormEps, double ropeBase, double initStd) {

    public LlamaConfig {
        if (hidden <= 0 || intermediate <= 0 || heads <= 0 || layers <= 0 || vocab <= 0 || maxSequence <= 0) {
            throw new IllegalArgumentException("config " + name + ": sizes must be positive");
        }
        if (hidden % heads != 0) throw new IllegalArgumentException("config " + name + ": hidden " + hidden + " not divisible by heads " + heads);
        if ((hidden / heads) % 2 != 0) throw new IllegalArgumentException("config " + name + ": head dim " + hidden / heads + " must be even for RoPE");
    }

    private static LlamaConfig paper(String name, int h, int i, int heads, int layers) {
        return new LlamaConfig(name, h, i, heads, layers, 32000, name.equals("llama_7b") ? 2048 : 1024, 1e-6, 10000, 0.02);
    }

    /** The paper configs by name, exactly as in the reference repositories' configs/*.json. */
    public static final Map<String, LlamaConfig> PAPER;

    static {
        Map<String, LlamaConfig> m = new LinkedHashMap<>();
        for (LlamaConfig c : List.of(
                paper("llama_9m", 128, 352, 4, 4),
                paper("llama_20m", 256, 688, 4, 4),
                paper("llama_35m", 384, 1024, 8, 6),
                paper("llama_40m", 416, 1024, 8, 8),
                paper("llama_60m", 512, 1376, 8, 8),
                paper("llama_71m", 512, 1368, 8, 12),
                paper("llama_130m", 768, 2048, 12, 12),
                paper("llama_250m", 768, 2560, 16, 24),
                paper("llama_350m", 1024, 2736, 16, 24),
                paper("llama_1b", 2048, 5461, 32, 24),
                paper("llama_3b", 2560, 6848, 32, 32),
                paper("llama_7b", 4096, 11008, 32, 32),
                // small configs for tests and CPU demos (byte-level vocabulary)
                new LlamaConfig("tiny", 64, 176, 4, 2, 256, 256, 1e-6, 10000, 0.02),
                new LlamaConfig("small", 128, 352, 4, 4, 256, 512, 1e-6, 10000, 0.02))) {
            m.put(c.name(), c);
        }
        PAPER = java.util.Collections.unmodifiableMap(m);
    }

    /** A config by name ("llama_60m", "tiny", ...) or from a JSON file path. */
    public static LlamaConfig named(String nameOrPath) {
        LlamaConfig c = PAPER.get(nameOrPath.trim().toLowerCase(java.util.Locale.ROOT));
        if (c != null) return c;
        Path p = Path.of(nameOrPath);
        if (Files.isRegularFile(p)) {
            try {
                return fromJson(p.getFileName().toString().replaceFirst("\\.json$", ""), Files.readString(p));
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read model config " + p + ": " + dev.tally.engine.io.FileErrors.reason(e), e);
            }
        }
        if (nameOrPath.endsWith(".json")) {
            String why = Files.isDirectory(p) ? "is a directory, not a file" : Files.exists(p) ? "not a regular file" : "no such file";
            throw new IllegalArgumentException("model config file " + nameOrPath + ": " + why);
        }
        throw new IllegalArgumentException("unknown model config '" + nameOrPath + "' (known: " + PAPER.keySet() + ", or a JSON file)");
    }

    private static final Set<String> IGNORED_JSON_KEYS = Set.of("architectures", "model_type", "hidden_act", "initializer_range",
            "bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype", "transformers_version", "use_cache", "tie_word_embeddings");

    /** HF-style JSON: hidden_size, intermediate_size, num_attention_heads, num_hidden_layers, vocab_size, ... */
    public static LlamaConfig fromJson(String name, String json) {
        Map<String, Object> m = Json.parseObject(json);
        List<String> known = List.of("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size",
                "max_sequence_length", "max_position_embeddings", "rms_norm_eps", "rope_theta");
        for (String k : m.keySet()) {
            if (!known.contains(k) && !IGNORED_JSON_KEYS.contains(k)) {
                throw new IllegalArgumentException("config " + name + ": unknown key '" + k + "' (known: " + known + ")");
            }
        }
        for (String k : known.subList(0, 5)) {
            if (!(m.get(k) instanceof Number)) throw new IllegalArgumentException("config " + name + ": missing or non-numeric '" + k + "'");
        }
        if (m.get("hidden_act") != null && !"silu".equals(m.get("hidden_act"))) {
            throw new IllegalArgumentException("config " + name + ": hidden_act must be silu, got " + m.get("hidden_act"));
        }
        if (Boolean.TRUE.equals(m.get("tie_word_embeddings"))) {
            throw new IllegalArgumentException("config " + name + ": tied embeddings are not supported (the paper models are untied)");
        }
        Object seqKey = m.containsKey("max_sequence_length") ? m.get("max_sequence_length") : m.get("max_position_embeddings");
        return new LlamaConfig(name, num(m, "hidden_size"), num(m, "intermediate_size"), num(m, "num_attention_heads"),
                num(m, "num_hidden_layers"), num(m, "vocab_size"), seqKey instanceof Number n ? n.intValue() : 1024,
                m.get("rms_norm_eps") instanceof Number n ? n.doubleValue() : 1e-6,
                m.get("rope_theta") instanceof Number n ? n.doubleValue() : 10000,
                m.get("initializer_range") instanceof Number n ? n.doubleValue() : 0.02);
    }

    private static int num(Map<String, Object> m, String k) { return ((Number) m.get(k)).intValue(); }

    public int headDim() { return hidden / heads; }

    /** Parameter shapes by name, in the model's order. */
    public Map<String, int[]> parameterShapes() {
        Map<String, int[]> s = new LinkedHashMap<>();
        s.put("embed_tokens.weight", new int[] {vocab, hidden});
        for (int l = 0; l < layers; l++) {
            String p = "layers." + l + ".";
            s.put(p + "input_layernorm.weight", new int[] {hidden});
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) s.put(p + "self_attn." + proj + ".weight", new int[] {hidden, hidden});
            s.put(p + "post_attention_layernorm.weight", new int[] {hidden});
            s.put(p + "mlp.gate_proj.weight", new int[] {intermediate, hidden});
            s.put(p + "mlp.up_proj.weight", new int[] {intermediate, hidden});
            s.put(p + "mlp.down_proj.weight", new int[] {hidden, intermediate});
        }
        s.put("norm.weight", new int[] {hidden});
        s.put("lm_head.weight", new int[] {vocab, hidden});
        return s;
    }

    /**
     * What each parameter of {@link #parameterShapes()} is (same keys, same order): the attention and MLP projections are
     * {@code LINEAR} — the matrices GaLore and APOLLO project — the rest embedding, norms and head.
     */
    public Map<String, Parameter.Role> parameterRoles() {
        Map<String, Parameter.Role> r = new LinkedHashMap<>();
        r.put("embed_tokens.weight", Parameter.Role.EMBEDDING);
        for (int l = 0; l < layers; l++) {
            String p = "layers." + l + ".";
            r.put(p + "input_layernorm.weight", Parameter.Role.NORM);
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) r.put(p + "self_attn." + proj + ".weight", Parameter.Role.LINEAR);
            r.put(p + "post_attention_layernorm.weight", Parameter.Role.NORM);
            for (String proj : new String[] {"gate_proj", "up_proj", "down_proj"}) r.put(p + "mlp." + proj + ".weight", Parameter.Role.LINEAR);
        }
        r.put("norm.weight", Parameter.Role.NORM);
        r.put("lm_head.weight", Parameter.Role.HEAD);
        return r;
    }

    public long parameterCount() {
        return parameterShapes().values().stream().mapToLong(d -> Arrays.stream(d).asLongStream().reduce(1, (a, b) -> a * b)).sum();
    }

    public String toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", name);
        m.put("hidden_size", (long) hidden);
        m.put("intermediate_size", (long) intermediate);
        m.put("num_attention_heads", (long) heads);
        m.put("num_hidden_layers", (long) layers);
        m.put("vocab_size", (long) vocab);
        m.put("max_sequence_length", (long) maxSequence);
        m.put("rms_norm_eps", rmsNormEps);
        m.put("rope_theta", ropeBase);
        return Json.write(m);
    }
}
