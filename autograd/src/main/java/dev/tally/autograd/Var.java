package dev.tally.autograd;

import dev.tally.engine.Tensor;

/**
 * A value in a recorded computation: a tensor, the gradient flowing back into it (booked on first use), and whether a
 * gradient is wanted. Parameters' vars write their gradient into {@link Parameter#grad()}.
 */
public final class Var {
    final Tensor value;
    final boolean requiresGrad;
    final Parameter param;
    Tensor grad;
    /** Backward nodes still to run that read this var's gradient contribution (parameters: uses not yet back-propagated). */
    int pendingUses;
    /** The node that produced this var (null for leaves); its value is freed once that node's backward has run. */
    Node producer;

    Var(Tensor value, boolean requiresGrad, Parameter param) {
        this.value = value;
        this.requiresGrad = requiresGrad;
        this.param = param;
    }

    public Tensor value() { return value; }
    public Tensor grad() { return param != null ? param.grad() : grad; }
    public boolean requiresGrad() { return requiresGrad; }
    public Parameter parameter() { return param; }

    @Override public String toString() { return "Var[" + value + (requiresGrad ? ", grad" : "") + "]"; }
}
