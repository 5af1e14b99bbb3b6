package dev.tally.models.llama;

import dev.tally.autograd.Functions;
import dev.tally.autograd.Graph;
import dev.tally.autograd.Parameter;
import dev.tally.autograd.Var;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The LLaMA-style decoder's parameters (one WEIGHTS arena, booked from the config's shapes) and its forward pass.
 * Forward returns the final normalised hidden states; the caller applies the loss with {@code lm_head}.
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final DType dtype;
    private final WeightFormat format;
    private final MemoryArena weights;
    private final Map<String, Parameter> params = new LinkedHashMap<>();

    public LlamaModel(LlamaConfig config, DType dtype, Device device, MemoryLedger ledger, long seed) {
        this(config, dtype, device, ledger, seed, WeightFormat.MODEL_DTYPE);
    }

    /**
     * With int8 weights ({@code format.quantized()}), the seven projections of each layer are booked as codes + scales +
     * zeros in the same WEIGHTS arena and initialised as the references do: the fp32 N(0, std²) draw, quantized to nearest.
     * The fp32 draw lives in a one-matrix "weights.init" WORKSPACE arena that is closed before the constructor returns.
     */
    public LlamaModel(LlamaConfig config, DType dtype, Device device, MemoryLedger ledger, long seed, WeightFormat format) {
        if (!dtype.isFloating()) throw new IllegalArgumentException("model dtype must be floating, got " + dtype);
        this.config = config;
        this.dtype = dtype;
        this.format = format;
        long bytes = 0, largestQuantized = 0;
        Map<String, Parameter.Role> roles = config.parameterRoles();
        for (Map.Entry<String, int[]> e : config.parameterShapes().entrySet()) {
            Shape shape = Shape.of(e.getValue());
            if (format.quantizes(e.getKey())) {
                bytes += QuantizedTensor.bookedBytes(shape, format.bits(), format.groupSize());
                largestQuantized = Math.max(largestQuantized, MemoryArena.bookedBytes(DType.F32, shape));
            } else {
                bytes += MemoryArena.bookedBytes(dtype, shape);
            }
        }
        this.weights = new MemoryArena(ledger, "weights", MemoryCategory.WEIGHTS, device, bytes);
        try (MemoryArena init = largestQuantized == 0 ? null
                : new MemoryArena(ledger, "weights.init", MemoryCategory.WORKSPACE, device, largestQuantized)) {
            int index = 0;
            for (Map.Entry<String, int[]> e : config.parameterShapes().entrySet()) {
                long paramSeed = seed * 1_000_003L + index;
                if (format.quantizes(e.getKey())) {
                    QuantizedTensor q = QuantizedTensor.allocate(weights, e.getKey(), Shape.of(e.getValue()), format.bits(), format.groupSize());
                    Tensor w = init.allocate("init." + e.getKey(), DType.F32, e.getValue());
                    if (device.hasMemory()) w.ops().random(w, Distribution.NORMAL, paramSeed, 0, 0, config.initStd());
                    q.quantize(w, GroupRounding.NEAREST);
                    init.free(w);
                    params.put(e.getKey(), new Parameter(e.getKey(), q, dtype, roles.get(e.getKey())));
                } else {
                    Tensor t = weights.allocate(e.getKey(), dtype, e.getValue());
                    if (device.hasMemory()) {
                        if (e.getValue().length == 1) t.ops().fill(t, 1.0); // RMSNorm gains start at one
                        else t.ops().random(t, Distribution.NORMAL, paramSeed, 0, 0, config.initStd());
                    }
                    params.put(e.getKey(), new Parameter(e.getKey(), t, roles.get(e.getKey())));
                }
                index++;
            }
        }
    }

    public LlamaConfig config() { return config; }
    public DType dtype() { return dtype; }
    public WeightFormat weightFormat() { return format; }
    public List<Parameter> parameters() { return Collections.unmodifiableList(new ArrayList<>(params.values())); }
    public Parameter parameter(String name) {
        Parameter p = params.get(name);
        if (p == null) throw new IllegalArgumentException("no parameter '" + name + "'");
        return p;
    }
    public MemoryArena weightsArena() { return weights; }

    /** Final hidden states [B·T, hidden] for token ids [B, T]. */
    public Var forward(Graph g, Tensor ids, int batch, int seq) {
        return forward(g, ids, batch, seq, 0);
    }

    /**
     * Final hidden states, with decoder layers 0 … {@code recomputedLayers}−1 checkpointed: each keeps only its input in
     * forward and runs again during backward. Embedding, final norm, head and loss are never recomputed (as in the
     * references' {@code gradient_checkpointing_enable()}).
     */
    public Var forward(Graph g, Tensor ids, int batch, int seq, int recomputedLayers) {
        LlamaConfig c = config;
        if (recomputedLayers < 0 || recomputedLayers > c.layers()) {
            throw new IllegalArgumentException("recomputed layers " + recomputedLayers + " outside [0, " + c.layers() + "] for " + c.name());
        }
        Var h = Functions.embedding(g, g.param(params.get("embed_tokens.weight")), g.input(ids.reshape(batch * seq)));
        for (int l = 0; l < c.layers(); l++) {
            int layer = l;
            h = l < recomputedLayers
                    ? g.checkpoint("layers." + l, h, (gr, x) -> decoderLayer(gr, x, layer, batch, seq))
                    : decoderLayer(g, h, l, batch, seq);
        }
        return Functions.rmsNorm(g, h, g.param(params.get("norm.weight")), c.rmsNormEps());
    }

    /** One decoder layer: pre-norm attention and SwiGLU MLP, each with a residual connection. */
    private Var decoderLayer(Graph g, Var h, int l, int batch, int seq) {
        LlamaConfig c = config;
        String p = "layers." + l + ".";
        Var x = Functions.rmsNorm(g, h, g.param(params.get(p + "input_layernorm.weight")), c.rmsNormEps());
        Var q = Functions.rope(g, Functions.linear(g, x, g.param(params.get(p + "self_attn.q_proj.weight"))), batch, seq, c.heads(), c.ropeBase());
        Var k = Functions.rope(g, Functions.linear(g, x, g.param(params.get(p + "self_attn.k_proj.weight"))), batch, seq, c.heads(), c.ropeBase());
        Var v = Functions.linear(g, x, g.param(params.get(p + "self_attn.v_proj.weight")));
        Var a = Functions.causalAttention(g, q, k, v, batch, seq, c.heads());
        h = Functions.add(g, h, Functions.linear(g, a, g.param(params.get(p + "self_attn.o_proj.weight"))));
        Var y = Functions.rmsNorm(g, h, g.param(params.get(p + "post_attention_layernorm.weight")), c.rmsNormEps());
        Var gate = Functions.linear(g, y, g.param(params.get(p + "mlp.gate_proj.weight")));
        Var up = Functions.linear(g, y, g.param(params.get(p + "mlp.up_proj.weight")));
        return Functions.add(g, h, Functions.linear(g, Functions.swiglu(g, gate, up), g.param(params.get(p + "mlp.down_proj.weight"))));
    }

    @Override public void close() { weights.close(); }
}
