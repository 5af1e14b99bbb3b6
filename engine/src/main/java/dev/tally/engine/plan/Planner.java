package dev.tally.engine.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Assigns offsets to a traced step's allocations with reuse by liveness: allocations are placed largest first, each at
 * the lowest offset that does not overlap any already placed allocation whose lifetime overlaps its own (the classic
 * greedy-by-size heuristic for static tensor memory planning). Deterministic for a given trace.
 */
public final class Planner {
    private Planner() {}

    public static MemoryPlan plan(List<TracingAllocator.Event> events) {
        int n = 0;
        for (TracingAllocator.Event e : events) if (!e.free()) n = Math.max(n, e.id() + 1);
        long[] size = new long[n];
        String[] label = new String[n];
        int[] start = new int[n], end = new int[n];
        Arrays.fill(end, Integer.MAX_VALUE); // never freed: lives to the end of the step
        long live = 0, peak = 0;
        for (int t = 0; t < events.size(); t++) {
            TracingAllocator.Event e = events.get(t);
            if (e.free()) {
                end[e.id()] = t;
                live -= size[e.id()];
            } else {
                size[e.id()] = e.bytes();
                label[e.id()] = e.label();
                start[e.id()] = t;
                live += e.bytes();
                peak = Math.max(peak, live);
            }
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingLong((Integer i) -> size[i]).reversed().thenComparingInt(i -> start[i]));
        long[] offset = new long[n];
        List<Integer> placed = new ArrayList<>();
        long total = 0;
        for (int id : order) {
            List<long[]> busy = new ArrayList<>();
            for (int other : placed) {
                if (start[other] < end[id] && start[id] < end[other]) busy.add(new long[] {offset[other], offset[other] + size[other]});
            }
            busy.sort(Comparator.comparingLong(r -> r[0]));
            long at = 0;
            for (long[] r : busy) {
                if (at + size[id] <= r[0]) break;
                at = Math.max(at, r[1]);
            }
            offset[id] = at;
            placed.add(id);
            total = Math.max(total, at + size[id]);
        }
        return new MemoryPlan(offset, size, label, total, peak);
    }
}
