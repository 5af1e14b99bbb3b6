package dev.tally.optim;

import dev.tally.engine.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/** One parameter's optimizer state: booked tensors by name plus host scalars (step, refreshes, seed). */
final class ParamState {
    final Map<String, Tensor> tensors = new LinkedHashMap<>();
    /** Completed optimizer steps for this parameter (0 before the first). */
    long step;
    /** Projection refreshes so far. */
    long refreshes;
    /** APOLLO: seed of the current random projection (evolves at each refresh). */
    long seed;

    Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalStateException("optimizer state '" + name + "' was not booked");
        return t;
    }
}
