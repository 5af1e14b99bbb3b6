package dev.tally.autograd;

import dev.tally.engine.DType;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * A named trainable tensor: its value (in a WEIGHTS arena) and its gradient (in a GRADS arena, or null while it has
 * none — layer-wise updates free it right after use). Gradient-ready hooks fire once per optimizer step, when this
 * parameter's gradient is final (after the last micro-batch's backward has accumulated into it).
 */
public final class Parameter {
    /**
     * What a parameter is, as the model that owns it declares. Training code groups parameters by role, never by parsing
     * names: GaLore and APOLLO project {@link #LINEAR} weights; recipes often exempt {@link #NORM} and {@link #EMBEDDING}
     * from weight decay.
     */
    public enum Role {
        /** The weight matrix of a linear map inside a repeated block (attention and MLP projections). */
        LINEAR,
        /** A token embedding table. */
        EMBEDDING,
        /** The output projection to the vocabulary. */
        HEAD,
        /** A normalisation gain (RMSNorm, LayerNorm). */
        NORM,
        /** Anything else (the role of parameters built without one). */
        OTHER
    }

    private final String name;
    private final Tensor value;
    /** Non-null for a weight stored as integer codes (int8 weights); then {@link #value()} is its codes tensor. */
    private final QuantizedTensor quantized;
    /** The dtype of the weight's values and gradient: value's dtype, or the model dtype of a quantized weight. */
    private final DType dtype;
    private final Role role;
    private Tensor grad;
    private boolean requiresGrad = true;
    private final List<Consumer<Parameter>> gradReadyHooks = new ArrayList<>();

    public Parameter(String name, Tensor value) {
        this(name, value, Role.OTHER);
    }

    /**
     * A weight stored quantized: forward and backward dequantize it on the fly (to {@code dtype}, the model dtype, which
     * is also its gradient's dtype), and only optimizers that re-quantize (q_apollo, q_galore_adamw8bit, ...) update it.
     */
    public Parameter(String name, QuantizedTensor quantized, DType dtype, Role role) {
        if (!dtype.isFloating()) throw new IllegalArgumentException("parameter " + name + ": dtype must be floating, got " + dtype);
        this.name = name;
        this.value = quantized.codes();
        this.quantized = quantized;
        this.dtype = dtype;
        this.role = java.util.Objects.requireNonNull(role, "role");
    }

    public Parameter(String name, Tensor value, Role role) {
        this.name = name;
        this.value = value;
        this.quantized = null;
        this.dtype = value.dtype();
        this.role = java.util.Objects.requireNonNull(role, "role");
    }

    /** Dotted module path, e.g. "layers.3.self_attn.q_proj.weight": names state in state dicts and checkpoints. */
    public String name() { return name; }
    public Tensor value() { return value; }
    /** The quantized storage, or null for a plain floating weight. */
    public QuantizedTensor quantized() { return quantized; }
    public boolean isQuantized() { return quantized != null; }
    /** dtype of the (dequantized) values and of the gradient. */
    public DType dtype() { return dtype; }
    public Role role() { return role; }
    public Tensor grad() { return grad; }
    public void setGrad(Tensor grad) { this.grad = grad; }
    public boolean requiresGrad() { return requiresGrad; }
    /** false freezes the parameter: graphs then treat it as a constant and write no gradient for it. */
    public void setRequiresGrad(boolean requiresGrad) { this.requiresGrad = requiresGrad; }

    public void addGradReadyHook(Consumer<Parameter> hook) { gradReadyHooks.add(hook); }

    /** Called by the backward pass ({@link Graph}) when the gradient is final for this step. */
    void fireGradReady() {
        for (Consumer<Parameter> h : gradReadyHooks) h.accept(this);
    }

    @Override public String toString() {
        return "Parameter[" + name + " " + (quantized != null ? "int" + quantized.bits() + "/" + quantized.groupSize() + " " : "")
                + dtype + value.shape() + "]";
    }
}
