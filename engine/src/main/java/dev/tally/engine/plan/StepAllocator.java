package dev.tally.engine.plan;

import dev.tally.engine.Allocator;

/** Hands out one training step's buffers; {@link #reset()} starts the next step from the first one again. */
public interface StepAllocator extends Allocator {
    void reset();
}
