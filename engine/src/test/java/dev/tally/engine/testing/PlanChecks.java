package dev.tally.engine.testing;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.plan.MemoryPlan;
import dev.tally.engine.plan.TracingAllocator.Event;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Checks a memory plan against its trace without the planner's own reasoning: replays the events in order, keeping the
 * set of live buffers, and asserts that each new buffer's planned bytes overlap none of the live ones; that every
 * buffer fits in the plan's size; that the size is at least the live-bytes peak of the replay; and alignment.
 */
public final class PlanChecks {
    private PlanChecks() {}

    public static void assertValid(List<Event> events, MemoryPlan plan) {
        Map<Integer, long[]> live = new HashMap<>(); // id → [start, end) bytes
        long liveBytes = 0, peak = 0;
        int allocations = 0;
        for (Event e : events) {
            if (e.free()) {
                long[] r = live.remove(e.id());
                assertTrue(r != null, "free of a buffer that is not live: " + e);
                liveBytes -= r[1] - r[0];
                continue;
            }
            allocations++;
            assertTrue(e.id() < plan.count(), "allocation " + e.id() + " is not in the plan");
            assertEquals(e.bytes(), plan.sizes()[e.id()], "planned size of allocation " + e.id());
            long at = plan.offsets()[e.id()], end = at + e.bytes();
            assertTrue(at >= 0 && at % MemoryArena.ALIGNMENT == 0, "offset " + at + " of allocation " + e.id() + " is not aligned");
            assertTrue(end <= plan.size(), "allocation " + e.id() + " ends at " + end + ", past the plan's " + plan.size() + " B");
            if (e.bytes() > 0) {
                for (Map.Entry<Integer, long[]> other : live.entrySet()) {
                    long[] r = other.getValue();
                    if (r[1] > r[0] && at < r[1] && r[0] < end) {
                        fail("allocation " + e.id() + " ('" + e.label() + "', [" + at + ", " + end + ")) overlaps live allocation "
                                + other.getKey() + " ('" + plan.labels()[other.getKey()] + "', [" + r[0] + ", " + r[1] + "))");
                    }
                }
            }
            live.put(e.id(), new long[] {at, end});
            liveBytes += e.bytes();
            peak = Math.max(peak, liveBytes);
        }
        assertEquals(allocations, plan.count(), "every traced allocation is planned");
        assertTrue(plan.size() >= peak, "plan " + plan.size() + " B is below the live peak " + peak + " B");
        assertEquals(peak, plan.liveBytesPeak(), "the plan's live peak");
    }
}
