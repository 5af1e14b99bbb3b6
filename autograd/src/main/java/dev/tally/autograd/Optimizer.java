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

    /**
     * What {@link #allocateState} books, from shapes alone: the state bytes and the step workspace (found by running the
     * update on META once). Computed once per optimizer; an optimizer built the same way over parameters of the same
     * shapes needs the same, so a run planned on META hands these to the real optimizer instead of planning again.
     */
    MemoryNeeds memoryNeeds();

    /** Bytes of optimizer state and of the step workspace. */
    record MemoryNeeds(long stateBytes, long workspaceBytes) {}

    /** Books all state (and the optimizer's step workspace) on the parameters' device in {@code ledger}; idempotent. */
    default void allocateState(MemoryLedger ledger) { allocateState(ledger, memoryNeeds()); }

    /**
     * Books state and a workspace of {@code planned.workspaceBytes()} — needs computed by {@link #memoryNeeds()} of an
     * optimizer built the same way (typically on META) — without running the update on META again. Refuses needs whose
     * state bytes differ from this optimizer's own.
     */
    void allocateState(MemoryLedger ledger, MemoryNeeds planned);

    /** Updates every parameter from its gradient. */
    void step();

    /** Updates one parameter (layer-wise training calls this from the parameter's gradient-ready hook). */
    void stepParameter(Parameter p);

    /** Zeroes every gradient (keeps the gradient buffers). */
    void zeroGrad();

    /** Multiplies every group's base learning rate by {@code factor} (the LR schedule's hook, as torch's LambdaLR). */
    void setLrScale(double factor);

    /** Each parameter group's learning rate as the next step uses it: its base lr times the schedule's factor. */
    double[] learningRates();

    /**
     * Everything needed to continue bit-identically: state tensors by "&lt;param&gt;.&lt;state&gt;" (views of the booked state,
     * not copies) and, as text, the optimizer's name, its parameter groups with their hyperparameters, the schedule's
     * factor and each parameter's step counters.
     */
    StateDict stateDict();

    /**
     * Restores what {@link #stateDict()} produced. A dict from another optimizer, another grouping or with state of other
     * names, shapes or dtypes is refused with the reason before anything changes.
     */
    void loadStateDict(StateDict state);

    /** A state dict: tensors plus string metadata, the shape a safetensors file stores. */
    record StateDict(Map<String, Tensor> tensors, Map<String, String> metadata) {
        public StateDict {
            tensors = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(tensors));
            metadata = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(metadata));
        }
    }

    /** Frees the optimizer's arenas (state, workspace); the optimizer cannot step afterwards. */
    @Override default void close() {}
}
