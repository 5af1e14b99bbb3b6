package dev.tally.engine.profile;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Time, calls and bytes per (phase, op kind) over the ops a {@link ProfilingOps} saw. The phase is a label the caller
 * sets around parts of a step (forward, loss, backward, optimizer); ops only accumulate into the current one. Profiling
 * reads clocks and shapes only, so results are the same bits with and without it.
 */
public final class OpProfile {
    /** Accumulated figures of one (phase, op) key. */
    public static final class Entry {
        public final String phase;
        public final String op;
        long nanos;
        long calls;
        long bytes;
        long flops;

        Entry(String phase, String op) {
            this.phase = phase;
            this.op = op;
        }

        public long nanos() { return nanos; }
        public long calls() { return calls; }
        public long bytes() { return bytes; }
        public long flops() { return flops; }
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private String phase = "other";
    private long wallNanos;
    private long steps;

    public synchronized void phase(String name) { this.phase = name; }

    public synchronized String phase() { return phase; }

    synchronized void add(String op, long nanos, long bytes, long flops) {
        Entry e = entries.computeIfAbsent(phase + '\u0000' + op, k -> new Entry(phase, op));
        e.nanos += nanos;
        e.calls++;
        e.bytes += bytes;
        e.flops += flops;
    }

    /** Records the wall time of whole steps, so the report can say how much of it no op accounts for. */
    public synchronized void addSteps(long count, long nanos) {
        steps += count;
        wallNanos += nanos;
    }

    public synchronized List<Entry> entries() { return new ArrayList<>(entries.values()); }

    public synchronized long opNanos() { return entries.values().stream().mapToLong(e -> e.nanos).sum(); }

    /**
     * A table per step: phase, op, ms, share of the step, calls, MB moved (inputs + outputs), GFLOP/s for matmuls; sorted
     * by time, then totals per phase and the time outside ops (graph building, planning, the host loop).
     */
    public synchronized String report(int limit) {
        long n = Math.max(1, steps);
        long total = wallNanos > 0 ? wallNanos : opNanos();
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort((x, y) -> Long.compare(y.nanos, x.nanos));
        StringBuilder b = new StringBuilder();
        b.append(String.format("per-op profile, per step (%d step%s; step %.1f ms)%n", n, n == 1 ? "" : "s", total / 1e6 / n));
        b.append(String.format("  %-14s %-44s %9s %6s %7s %10s %8s%n", "phase", "op", "ms", "%", "calls", "MB", "GFLOP/s"));
        int shown = 0;
        long rest = 0;
        for (Entry e : sorted) {
            if (shown++ >= limit) {
                rest += e.nanos;
                continue;
            }
            b.append(String.format("  %-14s %-44s %9.2f %6.1f %7d %10.1f %8s%n", e.phase, e.op, e.nanos / 1e6 / n,
                    100.0 * e.nanos / total, e.calls / n, e.bytes / 1e6 / n,
                    e.flops > 0 ? String.format("%.1f", e.flops / (double) e.nanos) : ""));
        }
        if (rest > 0) b.append(String.format("  %-59s %9.2f %6.1f%n", "(other ops)", rest / 1e6 / n, 100.0 * rest / total));
        Map<String, long[]> phases = new LinkedHashMap<>();
        for (Entry e : entries.values()) {
            long[] p = phases.computeIfAbsent(e.phase, k -> new long[2]);
            p[0] += e.nanos;
            p[1] += e.bytes;
        }
        b.append("  per phase:\n");
        for (var p : phases.entrySet()) {
            b.append(String.format("    %-14s %9.2f ms %6.1f %% %10.1f MB%n", p.getKey(), p.getValue()[0] / 1e6 / n,
                    100.0 * p.getValue()[0] / total, p.getValue()[1] / 1e6 / n));
        }
        if (wallNanos > 0) {
            long outside = wallNanos - opNanos();
            b.append(String.format("    %-14s %9.2f ms %6.1f %%%n", "outside ops", outside / 1e6 / n, 100.0 * outside / total));
        }
        return b.toString();
    }
}
