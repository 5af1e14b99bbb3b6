package dev.tally.engine;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every byte every arena books, per device and per {@link MemoryCategory}: reserved capacity, bytes in use, and peak.
 * On META the same calls happen as on a real device, so the META ledger is the real run's ledger without the memory.
 * Devices may also report memory they own outside arenas (CUDA context, library workspaces) via {@link #reportExternal}.
 */
public final class MemoryLedger {

    /** Figures for one device and category. */
    public record Entry(Device device, MemoryCategory category, long capacity, long inUse, long peak) {}

    private static final class Counter {
        long capacity, inUse, peak;
    }

    private static final class LabelCounter {
        final Device device;
        final MemoryCategory category;
        long inUse, peak;
        LabelCounter(Device device, MemoryCategory category) {
            this.device = device;
            this.category = category;
        }
    }

    private final Map<Device, EnumMap<MemoryCategory, Counter>> counters = new LinkedHashMap<>();
    private final Map<String, LabelCounter> labels = new HashMap<>();
    private final List<MemoryArena> arenas = new ArrayList<>();

    private Counter counter(Device d, MemoryCategory c) {
        return counters.computeIfAbsent(d, k -> new EnumMap<>(MemoryCategory.class)).computeIfAbsent(c, k -> new Counter());
    }

    synchronized void onReserve(MemoryArena a) {
        counter(a.device(), a.category()).capacity += a.capacity();
        arenas.add(a);
    }

    synchronized void onClose(MemoryArena a) {
        counter(a.device(), a.category()).capacity -= a.capacity();
        arenas.remove(a);
    }

    synchronized void onAllocate(MemoryArena a, long bytes, String label) {
        Counter c = counter(a.device(), a.category());
        c.inUse += bytes;
        c.peak = Math.max(c.peak, c.inUse);
        LabelCounter l = labels.computeIfAbsent(label, k -> new LabelCounter(a.device(), a.category()));
        l.inUse += bytes;
        l.peak = Math.max(l.peak, l.inUse);
    }

    synchronized void onFree(MemoryArena a, long bytes, String label) {
        counter(a.device(), a.category()).inUse -= bytes;
        LabelCounter l = labels.get(label);
        if (l != null) l.inUse -= bytes;
    }

    /**
     * Memory a device holds outside any arena (e.g. the CUDA context or cuBLAS workspace, category RUNTIME): counted as
     * reserved and in use until reported again with another figure.
     */
    public synchronized void reportExternal(Device device, MemoryCategory category, String label, long bytes) {
        Counter c = counter(device, category);
        LabelCounter l = labels.computeIfAbsent(label, k -> new LabelCounter(device, category));
        long delta = bytes - l.inUse;
        l.inUse = bytes;
        l.peak = Math.max(l.peak, bytes);
        c.capacity += delta;
        c.inUse += delta;
        c.peak = Math.max(c.peak, c.inUse);
    }

    public synchronized Entry entry(Device d, MemoryCategory cat) {
        EnumMap<MemoryCategory, Counter> m = counters.get(d);
        Counter c = m == null ? null : m.get(cat);
        return c == null ? new Entry(d, cat, 0, 0, 0) : new Entry(d, cat, c.capacity, c.inUse, c.peak);
    }

    /** All non-empty entries, devices in first-use order, categories in enum order. */
    public synchronized List<Entry> entries() {
        List<Entry> out = new ArrayList<>();
        counters.forEach((d, m) -> m.forEach((cat, c) -> {
            if (c.capacity != 0 || c.peak != 0) out.add(new Entry(d, cat, c.capacity, c.inUse, c.peak));
        }));
        return out;
    }

    /** Reserved bytes on a device, over all categories. */
    public synchronized long totalCapacity(Device d) {
        return entries().stream().filter(e -> e.device().equals(d)).mapToLong(Entry::capacity).sum();
    }

    public synchronized long totalInUse(Device d) {
        return entries().stream().filter(e -> e.device().equals(d)).mapToLong(Entry::inUse).sum();
    }

    /** Sum over categories of each category's own peak (an upper bound on the device's simultaneous peak). */
    public synchronized long totalPeak(Device d) {
        return entries().stream().filter(e -> e.device().equals(d)).mapToLong(Entry::peak).sum();
    }

    /** Open arenas, in creation order. */
    public synchronized List<MemoryArena> arenas() { return List.copyOf(arenas); }

    /** The {@code n} labels with the largest peak bytes. */
    public synchronized List<Map.Entry<String, Long>> largestLabels(int n) {
        return labels.entrySet().stream()
                .sorted(Comparator.comparingLong((Map.Entry<String, LabelCounter> e) -> e.getValue().peak).reversed()
                        .thenComparing(Map.Entry::getKey))
                .limit(n)
                .map(e -> Map.entry(e.getKey(), e.getValue().peak))
                .toList();
    }

    /** A printable table: device, category, capacity, in use, peak (bytes and human units), plus totals per device. */
    public synchronized String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("%-8s %-16s %16s %16s %16s%n", "device", "category", "capacity", "in use", "peak"));
        Device last = null;
        long cap = 0, use = 0, pk = 0;
        for (Entry e : entries()) {
            if (last != null && !last.equals(e.device())) {
                appendTotal(sb, last, cap, use, pk);
                cap = use = pk = 0;
            }
            last = e.device();
            cap += e.capacity();
            use += e.inUse();
            pk += e.peak();
            sb.append(String.format("%-8s %-16s %16s %16s %16s%n", e.device(), e.category().label(),
                    human(e.capacity()), human(e.inUse()), human(e.peak())));
        }
        if (last != null) appendTotal(sb, last, cap, use, pk);
        return sb.toString();
    }

    private static void appendTotal(StringBuilder sb, Device d, long cap, long use, long pk) {
        sb.append(String.format("%-8s %-16s %16s %16s %16s%n", d, "total", human(cap), human(use), human(pk)));
    }

    /** "123,456,789 B (117.7 MiB)" style rendering used in every table. */
    public static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (Math.abs(v) >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format("%.2f %s", v, units[u]);
    }
}
