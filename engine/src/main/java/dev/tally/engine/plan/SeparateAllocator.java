package dev.tally.engine.plan;

/**
 * The plan's reference: every buffer of a step gets bytes of its own, never shared with another buffer of the step
 * (the arena is sized by the sum of the traced sizes). A step run on it cannot be affected by a planning mistake, so
 * comparing it with the same step on a {@link PlannedAllocator} checks the plan independently of the planner.
 */
public final class SeparateAllocator implements StepAllocator {
    private long top;
    private long highWater;

    /** Bytes a step needs without reuse: the sum of every traced allocation. */
    public static long bytesFor(MemoryPlan plan) {
        long sum = 0;
        for (long s : plan.sizes()) sum = Math.addExact(sum, s);
        return sum;
    }

    @Override public void reset() { top = 0; }

    @Override public long allocate(long bytes, String label, long capacity) {
        if (top + bytes > capacity) return -1;
        long at = top;
        top += bytes;
        highWater = Math.max(highWater, top);
        return at;
    }

    @Override public void free(long offset, long bytes) {} // never reused within a step

    @Override public long mark() { throw new UnsupportedOperationException("step arenas do not use marks"); }

    @Override public void release(long mark) { throw new UnsupportedOperationException("step arenas do not use marks"); }

    @Override public long highWater() { return highWater; }
}
