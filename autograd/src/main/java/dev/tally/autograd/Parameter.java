package dev.tally.autograd;

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
    private final Role role;
    private Tensor grad;
    private boolean requiresGrad = true;
    private final List<Consumer<Parameter>> gradReadyHooks = new ArrayList<>();

    public Parameter(String name, Tensor value) {
        this(name, value, Role.OTHER);
    }

    public Parameter(String name, Tensor value, Role role) {
        this.name = name;
        this.value = value;
        this.role = java.util.Objects.requireNonNull(role, "role");
    }

    /** Dotted module path, e.g. "layers.3.self_attn.q_proj.weight": names state in state dicts and checkpoints. */
    public String name() { return name; }
    public Tensor value() { return value; }
    public Role role() { return role; }
    public Tensor grad() { return grad; }
    public void setGrad(Tensor grad) { this.grad = grad; }
    public boolean requiresGrad() { return requiresGrad; }
    public void setRequiresGrad(boolean requiresGrad) { this.requiresGrad = requiresGrad; }

    public void addGradReadyHook(Consumer<Parameter> hook) { gradReadyHooks.add(hook); }
    public void clearGradReadyHooks() { gradReadyHooks.clear(); }
    public boolean hasGradReadyHooks() { return !gradReadyHooks.isEmpty(); }

    /** Called by the backward pass when the gradient is final for this step. */
    public void fireGradReady() {
        for (Consumer<Parameter> h : gradReadyHooks) h.accept(this);
    }

    @Override public String toString() { return "Parameter[" + name + " " + value.dtype() + value.shape() + "]"; }
}
