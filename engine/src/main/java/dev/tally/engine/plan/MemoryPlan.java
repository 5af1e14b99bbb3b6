package dev.tally.engine.plan;

import dev.tally.engine.MemoryLedger;

import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Offsets for every allocation of one step, in allocation order, packed by liveness: tensors whose lifetimes do not
 * overlap share memory. {@link #size()} is the arena size the step needs — the number users see before a run.
 */
public record MemoryPlan(long[] offsets, long[] sizes, String[] labels, long size, long liveBytesPeak) {

    public int count() { return offsets.length; }

    /** The largest allocations, for the printed plan. */
    public List<String> largest(int n) {
        return IntStream.range(0, offsets.length).boxed()
                .sorted(Comparator.comparingLong((Integer i) -> sizes[i]).reversed())
                .limit(n)
                .map(i -> String.format("%-48s %14s", labels[i], MemoryLedger.human(sizes[i])))
                .toList();
    }

    @Override public String toString() {
        return "MemoryPlan[" + offsets.length + " allocations, " + MemoryLedger.human(size) + ", live peak "
                + MemoryLedger.human(liveBytesPeak) + "]";
    }

    @Override public boolean equals(Object o) {
        return o instanceof MemoryPlan p && Arrays.equals(offsets, p.offsets) && Arrays.equals(sizes, p.sizes) && size == p.size;
    }

    @Override public int hashCode() { return Arrays.hashCode(offsets) * 31 + Long.hashCode(size); }
}
