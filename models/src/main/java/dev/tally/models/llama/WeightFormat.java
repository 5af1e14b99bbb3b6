package dev.tally.models.llama;

import java.util.Set;

/**
 * How a model stores its linear weights. {@code bits = 16}: everything in the model dtype. {@code bits = 8}: the seven
 * attention/MLP projections of every layer (q, k, v, o, gate, up, down) are int8 codes with an fp32 scale and zero point
 * per group of {@code groupSize} consecutive elements (Q-GaLore / Q-APOLLO's format, see
 * {@link dev.tally.engine.QuantizedTensor}); embedding, head and norms stay in the model dtype.
 */
public record WeightFormat(int bits, int groupSize) {
    /** All weights in the model dtype. */
    public static final WeightFormat MODEL_DTYPE = new WeightFormat(16, 0);

    private static final Set<String> PROJECTIONS = Set.of("self_attn.q_proj.weight", "self_attn.k_proj.weight",
            "self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight");

    public WeightFormat {
        if (bits != 16 && bits != 8) throw new IllegalArgumentException("weight bits must be 16 (the model dtype) or 8 (int8), got " + bits);
        if (bits == 8 && groupSize < 1) throw new IllegalArgumentException("int8 weights need a group size >= 1 (128 or 256 in the papers), got " + groupSize);
    }

    /** int8 weights in groups of {@code groupSize}. */
    public static WeightFormat int8(int groupSize) { return new WeightFormat(8, groupSize); }

    /** From command-line values: bits 16 ignores the group size. */
    public static WeightFormat of(int bits, int groupSize) { return bits == 16 ? MODEL_DTYPE : new WeightFormat(bits, groupSize); }

    public boolean quantized() { return bits == 8; }

    /** Whether parameter {@code name} ("layers.3.mlp.up_proj.weight") is stored quantized in this format. */
    public boolean quantizes(String name) {
        if (!quantized() || !name.startsWith("layers.")) return false;
        int dot = name.indexOf('.', "layers.".length());
        return dot > 0 && PROJECTIONS.contains(name.substring(dot + 1));
    }

    @Override public String toString() { return quantized() ? "int8/g" + groupSize : "model dtype"; }
}
