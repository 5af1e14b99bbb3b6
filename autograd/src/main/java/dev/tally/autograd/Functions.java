package dev.tally.autograd;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Ops;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.util.List;

/**
 * The differentiable operations of the LLaMA-style model, each a node class with forward (the static method) and
 * backward side by side. Outputs are booked in the graph's activation arena; gradients accumulate into inputs' grads.
 */
public final class Functions {
    private Functions() {}

    // ------------------------------------------------------------------ embedding

    /** out[n, :] = table[ids[n], :]; ids [N] (I32/I64). */
    public static Var embedding(Graph g, Var table, Var ids) {
        Tensor t = table.value;
        Tensor out = g.alloc("act.embedding", t.dtype(), (int) ids.value.numel(), t.dim(1));
        t.ops().embedding(t, ids.value, out);
        return g.record(new Node(List.of(table, ids)) {
            @Override void backward(Graph gr) {
                t.ops().scatterAddRows(ids.value, gr.gradOf(output), gr.gradOf(table));
            }
        }, out);
    }

    // ------------------------------------------------------------------ RMSNorm

    public static Var rmsNorm(Graph g, Var x, Var weight, double eps) {
        Tensor xv = x.value;
        int rows = (int) (xv.numel() / xv.dim(-1));
        Tensor out = g.alloc("act.rmsnorm", xv.dtype(), xv.dims());
        Tensor rstd = g.alloc("act.rmsnorm.rstd", DType.F32, rows);
        xv.ops().rmsNorm(xv, weight.value, eps, out, rstd);
        return g.record(new Node(List.of(x, weight)) {
            @Override void backward(Graph gr) {
                Ops ops = xv.ops();
                // a first contribution to x's gradient is written in place (no temporary, no zero-fill and add)
                boolean direct = x.requiresGrad && gr.gradFresh(x);
                Tensor dx = direct ? gr.gradForOverwrite(x) : gr.alloc("tmp.rmsnorm.dx", xv.dtype(), xv.dims());
                Tensor dw = gr.alloc("tmp.rmsnorm.dw", weight.value.dtype(), weight.value.dims());
                ops.rmsNormBackward(xv, weight.value, rstd, gr.gradOf(output), dx, dw);
                if (x.requiresGrad && !direct) add(ops, gr.gradOf(x), dx);
                if (weight.requiresGrad) add(ops, gr.gradOf(weight), dw);
                gr.free(dw);
                if (!direct) gr.free(dx);
            }

            @Override void freeSaved(Graph gr) { gr.free(rstd); }
        }, out);
    }

    // ------------------------------------------------------------------ linear

    /**
     * y = x · Wᵀ for x [N, in], W [out, in] (no bias). A quantized W (int8 weights) is dequantized into a transient
     * activation buffer for the forward product and again for dx in backward, each freed right after its matmul: no float
     * copy of W outlives the op (backward keeps x and the codes, as the references' W8Linear does).
     */
    public static Var linear(Graph g, Var x, Var w) {
        Tensor xv = x.value, wv = w.value;
        QuantizedTensor qw = w.param != null ? w.param.quantized() : null;
        Tensor out = g.alloc("act.linear", xv.dtype(), xv.dim(0), qw == null ? wv.dim(0) : qw.shape().dim(0));
        Tensor wf = qw == null ? wv : dequantized(g, qw, xv.dtype());
        xv.ops().matmul(xv, wf.t(), out, 1, 0);
        if (qw != null) g.free(wf);
        return g.record(new Node(List.of(x, w)) {
            @Override void backward(Graph gr) {
                Tensor dy = gr.gradOf(output);
                if (x.requiresGrad) {
                    Tensor wb = qw == null ? wv : dequantized(gr, qw, xv.dtype());
                    // beta = 0 on a first contribution: the product is written, not added onto a zero-filled buffer
                    boolean first = gr.gradFresh(x);
                    xv.ops().matmul(dy, wb, first ? gr.gradForOverwrite(x) : gr.gradOf(x), 1, first ? 0 : 1);
                    if (qw != null) gr.free(wb);
                }
                if (w.requiresGrad) xv.ops().matmul(dy.t(), xv, gr.gradOf(w), 1, 1);
            }
        }, out);
    }

    private static Tensor dequantized(Graph g, QuantizedTensor q, DType dtype) {
        Tensor wf = g.alloc("tmp.linear.dequantized_weight", dtype, q.shape().dims());
        q.dequantize(wf);
        return wf;
    }

    // ------------------------------------------------------------------ elementwise

    public static Var add(Graph g, Var a, Var b) {
        Tensor out = g.alloc("act.add", a.value.dtype(), a.value.dims());
        a.value.ops().binary(BinaryOp.ADD, a.value, b.value, out);
        return g.record(new Node(List.of(a, b)) {
            @Override void backward(Graph gr) {
                if (b.requiresGrad) gr.accumulateGrad(b, gr.gradOf(output));
                if (a.requiresGrad) gr.passGrad(output, a); // last: it may take the output's gradient buffer over
            }
        }, out);
    }

    /** SwiGLU's gate: silu(gate) ∘ up. */
    public static Var swiglu(Graph g, Var gate, Var up) {
        Tensor gv = gate.value, uv = up.value;
        Ops ops = gv.ops();
        Tensor out = g.alloc("act.swiglu", gv.dtype(), gv.dims());
        ops.unary(UnaryOp.SILU, gv, out);
        ops.binary(BinaryOp.MUL, out, uv, out);
        return g.record(new Node(List.of(gate, up)) {
            @Override void backward(Graph gr) {
                Tensor dy = gr.gradOf(output);
                // a first contribution is computed in the gradient buffer itself; later ones in a temporary, then added
                boolean gateDirect = gate.requiresGrad && gr.gradFresh(gate), upDirect = up.requiresGrad && gr.gradFresh(up) && up != gate;
                boolean needTmp = (gate.requiresGrad && !gateDirect) || (up.requiresGrad && !upDirect);
                Tensor tmp = needTmp ? gr.alloc("tmp.swiglu", gv.dtype(), gv.dims()) : null;
                if (gate.requiresGrad) {
                    Tensor dst = gateDirect ? gr.gradForOverwrite(gate) : tmp;
                    ops.binary(BinaryOp.MUL, dy, uv, dst);
                    ops.unaryBackward(UnaryOp.SILU, gv, dst, dst);
                    if (!gateDirect) add(ops, gr.gradOf(gate), tmp);
                }
                if (up.requiresGrad) {
                    Tensor dst = upDirect ? gr.gradForOverwrite(up) : tmp;
                    ops.unary(UnaryOp.SILU, gv, dst);
                    ops.binary(BinaryOp.MUL, dst, dy, dst);
                    if (!upDirect) add(ops, gr.gradOf(up), tmp);
                }
                gr.free(tmp);
            }
        }, out);
    }

    // ------------------------------------------------------------------ rotary embedding

    /** RoPE on x [B·T, H·Dh] viewed as [B, T, H, Dh]. */
    public static Var rope(Graph g, Var x, int batch, int seq, int heads, double base) {
        Tensor xv = x.value;
        int dh = xv.dim(1) / heads;
        Tensor out = g.alloc("act.rope", xv.dtype(), xv.dims());
        xv.ops().rope(xv.reshape(batch, seq, heads, dh), out.reshape(batch, seq, heads, dh), 0, base, false);
        return g.record(new Node(List.of(x)) {
            @Override void backward(Graph gr) {
                boolean direct = gr.gradFresh(x); // a first contribution is rotated straight into the gradient buffer
                Tensor tmp = direct ? gr.gradForOverwrite(x) : gr.alloc("tmp.rope", xv.dtype(), xv.dims());
                xv.ops().rope(gr.gradOf(output).reshape(batch, seq, heads, dh), tmp.reshape(batch, seq, heads, dh), 0, base, true);
                if (!direct) {
                    add(xv.ops(), gr.gradOf(x), tmp);
                    gr.free(tmp);
                }
            }
        }, out);
    }

    // ------------------------------------------------------------------ causal attention

    /**
     * Causal scaled dot-product attention on q, k, v [B·T, H·Dh] (heads interleaved as [B, T, H, Dh]); output in the same
     * layout. With {@link Graph#fusedAttention()} (the trainer's CPU default) nothing quadratic is booked; otherwise the
     * [B, H, T, T] probabilities are kept for backward.
     */
    public static Var causalAttention(Graph g, Var q, Var k, Var v, int batch, int seq, int heads) {
        return g.fusedAttention() ? fusedCausalAttention(g, q, k, v, batch, seq, heads) : materializedCausalAttention(g, q, k, v, batch, seq, heads);
    }

    /**
     * The fused op ({@link Ops#causalAttention}): saves only the per-row log-sum-exp [B, H, T] besides its inputs and
     * output; backward recomputes the probabilities.
     */
    static Var fusedCausalAttention(Graph g, Var q, Var k, Var v, int batch, int seq, int heads) {
        Tensor qv = q.value;
        Ops ops = qv.ops();
        double scale = 1.0 / Math.sqrt(qv.dim(1) / heads);
        Tensor lse = g.alloc("act.attention.lse", DType.F32, batch, heads, seq);
        Tensor out = g.alloc("act.attention", qv.dtype(), qv.dims());
        ops.causalAttention(heads(qv, batch, seq, heads), heads(k.value, batch, seq, heads), heads(v.value, batch, seq, heads), scale,
                heads(out, batch, seq, heads), lse);
        return g.record(new Node(List.of(q, k, v)) {
            @Override void backward(Graph gr) {
                ops.causalAttentionBackward(heads(qv, batch, seq, heads), heads(k.value, batch, seq, heads), heads(v.value, batch, seq, heads),
                        heads(out, batch, seq, heads), lse, heads(gr.gradOf(output), batch, seq, heads), scale,
                        q.requiresGrad ? heads(gr.gradOf(q), batch, seq, heads) : null,
                        k.requiresGrad ? heads(gr.gradOf(k), batch, seq, heads) : null,
                        v.requiresGrad ? heads(gr.gradOf(v), batch, seq, heads) : null);
            }

            @Override void freeSaved(Graph gr) { gr.free(lse); }
        }, out);
    }

    /** Scores, softmax and the [B, H, T, T] probabilities kept for backward (the path for devices without the fused op). */
    static Var materializedCausalAttention(Graph g, Var q, Var k, Var v, int batch, int seq, int heads) {
        Tensor qv = q.value;
        Ops ops = qv.ops();
        int dh = qv.dim(1) / heads;
        double scale = 1.0 / Math.sqrt(dh);
        Tensor probs = g.alloc("act.attention.probs", qv.dtype(), batch, heads, seq, seq);
        ops.matmul(heads(qv, batch, seq, heads), heads(k.value, batch, seq, heads).t(), probs, scale, 0);
        ops.softmax(probs, probs, true);
        Tensor out = g.alloc("act.attention", qv.dtype(), qv.dims());
        ops.matmul(probs, heads(v.value, batch, seq, heads), heads(out, batch, seq, heads), 1, 0);
        return g.record(new Node(List.of(q, k, v)) {
            @Override void backward(Graph gr) {
                Tensor dout = heads(gr.gradOf(output), batch, seq, heads);
                Tensor dprobs = gr.alloc("tmp.attention.dprobs", qv.dtype(), batch, heads, seq, seq);
                ops.matmul(dout, heads(v.value, batch, seq, heads).t(), dprobs, 1, 0);
                // beta = 0 where this is the gradient's first contribution (written, not added onto zeros)
                if (v.requiresGrad) {
                    double beta = beta(gr, v);
                    ops.matmul(probs.t(), dout, heads(gradToWrite(gr, v), batch, seq, heads), 1, beta);
                }
                ops.softmaxBackward(probs, dprobs, dprobs);
                if (q.requiresGrad) {
                    double beta = beta(gr, q);
                    ops.matmul(dprobs, heads(k.value, batch, seq, heads), heads(gradToWrite(gr, q), batch, seq, heads), scale, beta);
                }
                if (k.requiresGrad) {
                    double beta = beta(gr, k);
                    ops.matmul(dprobs.t(), heads(qv, batch, seq, heads), heads(gradToWrite(gr, k), batch, seq, heads), scale, beta);
                }
                gr.free(dprobs);
            }

            @Override void freeSaved(Graph gr) { gr.free(probs); }
        }, out);
    }

    /**
     * matmul's beta for a product into {@code v}'s gradient: 0 on a first contribution, else 1 (accumulate). Ask before
     * {@link #gradToWrite}, which books the buffer.
     */
    private static double beta(Graph g, Var v) { return g.gradFresh(v) ? 0 : 1; }

    /** {@code v}'s gradient for a product with {@link #beta}: booked unzeroed on a first contribution. */
    private static Tensor gradToWrite(Graph g, Var v) { return g.gradFresh(v) ? g.gradForOverwrite(v) : g.gradOf(v); }

    /** [B·T, H·Dh] as a [B, H, T, Dh] view (no copy). */
    static Tensor heads(Tensor x, int batch, int seq, int heads) {
        return x.reshape(batch, seq, heads, x.dim(1) / heads).permute(0, 2, 1, 3);
    }

    // ------------------------------------------------------------------ loss

    /**
     * A loss computed by explicit forward/backward code outside the tape (cross-entropy over a classifier): forward
     * returns the one-element loss and keeps whatever it needs; backward receives dLoss and must add the inputs' gradients.
     */
    public interface ExternalLoss {
        void forward(Tensor loss);

        /** Adds the inputs' gradients for upstream gradient {@code dLoss}; {@link Functions#gradOf} books their buffers. */
        void backward(Tensor dLoss, Graph g);

        /** Frees what forward kept, when backward will not run. */
        void discard();
    }

    public static Var externalLoss(Graph g, List<Var> inputs, ExternalLoss loss) {
        Tensor out = g.alloc("act.loss", DType.F32, 1);
        loss.forward(out);
        return g.record(new Node(inputs) {
            boolean done;

            @Override void backward(Graph gr) {
                loss.backward(gr.gradOf(output), gr);
                done = true;
            }

            @Override void freeSaved(Graph gr) {
                if (!done) loss.discard();
            }
        }, out);
    }

    /** The gradient buffer of a var (booked on first use) — for {@link ExternalLoss} implementations. */
    public static Tensor gradOf(Graph g, Var v) { return g.gradOf(v); }

    static void add(Ops ops, Tensor acc, Tensor x) { ops.binary(BinaryOp.ADD, acc, x, acc); }
}
