package dev.tally.autograd;

import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

import java.util.List;
import java.util.Map;

/**
 * What training code needs from an optimizer (implementations live in the optimizers module). Memory is declared before
 * use: {@link #allocateState} books every state tensor, sized from parameter shapes, in an optimizer_state arena
 * before the first step; {@link #step()} allocates nothing.
 */
public interface Optimizer extends AutoCloseable {
    /** The name users know it by ("adamw", "apollo_mini", ...). */
    String name();

    /** Every parameter this optimizer updates, in group order. */
    List<Parameter> parameters();

    /** Books all state (and the optimizer's step workspace) on the parameters' device; idempotent. */
    void allocateState(MemoryLedger ledger);

    /** Updates every parameter from its gradient. */
    void step();

    /** Updates one parameter (layer-wise training calls this from the parameter's gradient-ready hook). */
    void stepParameter(Parameter p);

    /** Zeroes every gradient (keeps the gradient buffers). */
    void zeroGrad();

    /** Scales every group's base learning rate by {@code factor} (the LR schedule's hook). */
    void setLrScale(double factor);

    /** State tensors by name ({@code "<param>.<state>"}) plus scalars (step counters, seeds) as 1-element tensors. */
    Map<String, Tensor> stateDict();

    /** Restores what {@link #stateDict()} produced; mismatched names, shapes or dtypes throw before anything changes. */
    void loadStateDict(Map<String, Tensor> state);

    /** Frees the optimizer's arenas (state, workspace); the optimizer cannot step afterwards. */
    @Override default void close() {}
}
