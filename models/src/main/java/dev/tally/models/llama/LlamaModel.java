package dev.tally.models.llama;

import dev.tally.autograd.Functions;
import dev.tally.autograd.Graph;
import dev.tally.autograd.Parameter;
import dev.tally.autograd.Var;
import dev.tally.engine.Arena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
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
    private final Arena weights;
    private final Map<String, Parameter> params = new LinkedHashMap<>();

    public LlamaModel(LlamaConfig config, DType dtype, Device device, MemoryLedger ledger, long seed) {
        if (!dtype.isFloating()) throw new IllegalArgumentException("model dtype must be floating, got " + dtype);
        this.config = config;
        this.dtype = dtype;
        long bytes = 0;
        for (int[] s : config.parameterShapes().values()) bytes += Arena.bookedBytes(dtype, Shape.of(s));
        this.weights = new Arena(ledger, "weights", MemoryCategory.WEIGHTS, device, bytes);
        int index = 0;
        Map<String, Parameter.Role> roles = config.parameterRoles();
        for (Map.Entry<String, int[]> e : config.parameterShapes().entrySet()) {
            Tensor t = weights.allocate(e.getKey(), dtype, e.getValue());
            if (device.hasMemory()) {
                if (e.getValue().length == 1) t.ops().fill(t, 1.0); // RMSNorm gains start at one
                else t.ops().random(t, Distribution.NORMAL, seed * 1_000_003L + index, 0, 0, config.initStd());
            }
            params.put(e.getKey(), new Parameter(e.getKey(), t, roles.get(e.getKey())));
            index++;
        }
    }

    public LlamaConfig config() { return config; }
    public DType dtype() { return dtype; }
    public List<Parameter> parameters() { return Collections.unmodifiableList(new ArrayList<>(params.values())); }
    public Parameter parameter(String name) {
        Parameter p = params.get(name);
        if (p == null) throw new IllegalArgumentException("no parameter '" + name + "'");
        return p;
    }
    public Arena weightsArena() { return weights; }

    /** Final hidden states [B·T, hidden] for token ids [B, T]. */
    public Var forward(Graph g, Tensor ids, int batch, int seq) {
        LlamaConfig c = config;
        Var h = Functions.embedding(g, g.param(params.get("embed_tokens.weight")), g.input(ids.reshape(batch * seq)));
        for (int l = 0; l < c.layers(); l++) {
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
            h = Functions.add(g, h, Functions.linear(g, Functions.swiglu(g, gate, up), g.param(params.get(p + "mlp.down_proj.weight"))));
        }
        return Functions.rmsNorm(g, h, g.param(params.get("norm.weight")), c.rmsNormEps());
    }

    @Override public void close() { weights.close(); }
}
