package dev.tally.engine;

/**
 * How an arena hands out offsets inside its fixed region. The default is a bump allocator with marks; the training-step
 * planner supplies one that records a step's allocations on META and one that replays planned offsets.
 * Sizes passed in are already rounded up to {@link MemoryArena#ALIGNMENT}.
 */
public interface Allocator {
    /** Offset for {@code bytes} bytes, or -1 when it does not fit in {@code capacity}. */
    long allocate(long bytes, String label, long capacity);

    /** Returns a block. Allocators that cannot reuse memory may ignore it (the ledger still counts it as freed). */
    void free(long offset, long bytes);

    /** Current top (bump) position: everything allocated after a mark is released by {@link #release(long)}. */
    long mark();

    void release(long mark);

    /** Highest offset+size ever handed out. */
    long highWater();

    /** Simple bump allocator: O(1) allocation, freeing only by marks (or when the freed block is the last one). */
    final class Bump implements Allocator {
        private long top;
        private long highWater;

        @Override public long allocate(long bytes, String label, long capacity) {
            if (top + bytes > capacity) return -1;
            long at = top;
            top += bytes;
            highWater = Math.max(highWater, top);
            return at;
        }

        @Override public void free(long offset, long bytes) {
            if (offset + bytes == top) top = offset; // last block: give it back, the common LIFO case
        }

        @Override public long mark() { return top; }

        @Override public void release(long mark) {
            if (mark < 0 || mark > top) throw new IllegalArgumentException("mark " + mark + " is not below the top " + top);
            top = mark;
        }

        @Override public long highWater() { return highWater; }
    }
}
