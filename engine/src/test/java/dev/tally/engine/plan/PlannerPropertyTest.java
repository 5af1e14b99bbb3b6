package dev.tally.engine.plan;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.plan.TracingAllocator.Event;
import dev.tally.engine.testing.PlanChecks;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The planner on 500 seeded random traces (random interleavings of allocations and frees, sizes from empty to MiBs
 * in whole alignment units, some buffers never freed): checked by {@link PlanChecks}' replay — no two live buffers
 * overlap, everything fits, the size is at least the live peak — and the same trace always gives the same plan.
 * Real traces (the tiny and small models' steps) are checked in the tests module (PlanOfRealStepsTest).
 */
class PlannerPropertyTest {
    static List<Event> randomTrace(Random r) {
        List<Event> events = new ArrayList<>();
        List<Integer> live = new ArrayList<>();
        int allocations = 1 + r.nextInt(r.nextBoolean() ? 20 : 300), next = 0;
        while (next < allocations || (!live.isEmpty() && r.nextInt(4) != 0)) {
            if (next < allocations && (live.isEmpty() || r.nextInt(100) < 55)) {
                long units = switch (r.nextInt(10)) {
                    case 0 -> 0;                         // empty tensors are booked too
                    case 1 -> 1 + r.nextInt(16_384);     // up to 4 MiB
                    default -> 1 + r.nextInt(64);
                };
                events.add(new Event(next, units * MemoryArena.ALIGNMENT, "t" + next, false));
                live.add(next++);
            } else {
                int id = live.remove(r.nextInt(live.size()));
                events.add(new Event(id, 0, null, true));
            }
        }
        return events; // whatever is still live lives to the end of the step
    }

    @Test
    void randomTracesGiveValidDeterministicPlans() {
        Random r = new Random(20261201);
        for (int c = 0; c < 500; c++) {
            List<Event> trace = randomTrace(r);
            MemoryPlan plan = Planner.plan(trace);
            PlanChecks.assertValid(trace, plan);
            MemoryPlan again = Planner.plan(new ArrayList<>(trace));
            assertArrayEquals(plan.offsets(), again.offsets(), "case " + c + ": same trace, same offsets");
            assertEquals(plan.size(), again.size());
        }
    }

    @Test
    void theCheckerCatchesAnOverlapOfLiveBuffers() {
        // the checker itself must be able to fail: two live buffers placed on the same bytes
        List<Event> trace = List.of(new Event(0, 512, "a", false), new Event(1, 256, "b", false), new Event(0, 0, null, true));
        MemoryPlan wrong = new MemoryPlan(new long[] {0, 256}, new long[] {512, 256}, new String[] {"a", "b"}, 768, 768);
        assertThrows(AssertionError.class, () -> PlanChecks.assertValid(trace, wrong));
        PlanChecks.assertValid(trace, Planner.plan(trace));
    }
}
