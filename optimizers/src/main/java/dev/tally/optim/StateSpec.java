package dev.tally.optim;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;

/**
 * One state tensor an optimizer needs for one parameter, declared from shapes before anything is allocated.
 * {@code kind} is the sub-label the memory table breaks optimizer state down by.
 */
public record StateSpec(String name, DType dtype, Shape shape, Kind kind) {
    public enum Kind { MOMENT, FACTORED, BASIS, QUANTIZED, ABSMAX, SCALAR }

    public long bookedBytes() { return MemoryArena.bookedBytes(dtype, shape); }
}
