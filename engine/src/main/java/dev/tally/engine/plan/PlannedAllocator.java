package dev.tally.engine.plan;

/**
 * Replays a {@link MemoryPlan}: the k-th allocation of a step gets the k-th planned offset. A step that asks for
 * something else than what was traced throws — the plan would no longer be the memory the run uses.
 */
public final class PlannedAllocator implements StepAllocator {
    private final MemoryPlan plan;
    private int next;
    private long highWater;

    public PlannedAllocator(MemoryPlan plan) { this.plan = plan; }

    /** Starts the next step at the plan's first allocation. */
    @Override public void reset() { next = 0; }

    @Override public long allocate(long bytes, String label, long capacity) {
        if (next >= plan.count()) {
            throw new IllegalStateException("step deviates from its memory plan: allocation #" + next + " ('" + label
                    + "') was not traced (the plan has " + plan.count() + ")");
        }
        if (plan.sizes()[next] != bytes) {
            throw new IllegalStateException("step deviates from its memory plan at allocation #" + next + ": '" + label + "' asks "
                    + bytes + " B, the plan traced '" + plan.labels()[next] + "' with " + plan.sizes()[next] + " B");
        }
        long at = plan.offsets()[next++];
        if (at + bytes > capacity) return -1;
        highWater = Math.max(highWater, at + bytes);
        return at;
    }

    @Override public void free(long offset, long bytes) {}

    @Override public long mark() { throw new UnsupportedOperationException("planned arenas do not use marks"); }

    @Override public void release(long mark) { throw new UnsupportedOperationException("planned arenas do not use marks"); }

    @Override public long highWater() { return highWater; }
}
