package dev.tally.engine.plan;

import dev.tally.engine.Allocator;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Records a step's allocations and frees (run it on META: nothing is reserved). Every allocation gets a fresh offset so
 * frees can be matched to allocations; {@link Planner} turns the recording into reusable offsets.
 */
public final class TracingAllocator implements Allocator {
    /** One event: an allocation (bytes > 0 or == 0 with free = false) or the free of allocation {@code id}. */
    public record Event(int id, long bytes, String label, boolean free) {}

    private final List<Event> events = new ArrayList<>();
    private final Map<Long, Integer> idByOffset = new HashMap<>();
    private final List<Long> sizes = new ArrayList<>();
    private long top;

    @Override public long allocate(long bytes, String label, long capacity) {
        int id = sizes.size();
        sizes.add(bytes);
        long at = top;
        top += Math.max(bytes, dev.tally.engine.MemoryArena.ALIGNMENT); // unique offsets, even for empty tensors
        idByOffset.put(at, id);
        events.add(new Event(id, bytes, label, false));
        return at;
    }

    @Override public void free(long offset, long bytes) {
        Integer id = idByOffset.remove(offset);
        if (id == null) throw new IllegalStateException("free of an unknown allocation at " + offset);
        events.add(new Event(id, bytes, null, true));
    }

    @Override public long mark() { return top; }

    @Override public void release(long mark) {
        throw new UnsupportedOperationException("a traced step frees tensors one by one; marks are not supported");
    }

    @Override public long highWater() { return top; }

    public List<Event> events() { return List.copyOf(events); }
}
