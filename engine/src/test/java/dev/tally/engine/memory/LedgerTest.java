package dev.tally.engine.memory;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The ledger adds up exactly, and META books exactly what the CPU books for the same sequence. */
class LedgerTest {

    /** Replays a seeded sequence of arenas, allocations, frees and scopes; returns bytes booked per category. */
    private static Map<MemoryCategory, long[]> replay(MemoryLedger ledger, Device device, long seed) {
        SeededRandom r = new SeededRandom(seed);
        Map<MemoryCategory, long[]> expected = new EnumMap<>(MemoryCategory.class); // {capacity, inUse, peak}
        List<MemoryArena> arenas = new ArrayList<>();
        MemoryCategory[] cats = {MemoryCategory.WEIGHTS, MemoryCategory.ACTIVATIONS, MemoryCategory.OPTIMIZER_STATE};
        for (MemoryCategory c : cats) {
            long cap = 64 * 1024 + r.nextInt(5000);
            MemoryArena a = new MemoryArena(ledger, c.label(), c, device, cap);
            arenas.add(a);
            expected.put(c, new long[]{MemoryArena.alignUp(cap), 0, 0});
        }
        DType[] types = {DType.F32, DType.BF16, DType.I64, DType.U8};
        for (int step = 0; step < 200; step++) {
            int which = r.nextInt(3);
            MemoryArena a = arenas.get(which);
            long[] e = expected.get(cats[which]);
            long mark = a.mark();
            List<Tensor> made = new ArrayList<>();
            for (int i = 0; i < 1 + r.nextInt(4); i++) {
                DType t = types[r.nextInt(types.length)];
                Shape s = Shape.of(1 + r.nextInt(37), 1 + r.nextInt(11));
                if (a.used() + MemoryArena.bookedBytes(t, s) > a.capacity()) break;
                made.add(a.allocate("t" + step + "." + i, t, s));
                e[1] += MemoryArena.bookedBytes(t, s);
                e[2] = Math.max(e[2], e[1]);
            }
            int action = r.nextInt(3);
            if (action == 0 && !made.isEmpty()) {
                Tensor last = made.remove(made.size() - 1);
                a.free(last);
                e[1] -= last.storage().byteSize();
            } else if (action == 1) {
                for (Tensor t : made) e[1] -= t.storage().byteSize();
                a.release(mark);
            }
        }
        return expected;
    }

    @Test
    void entriesEqualTheSumOfBookings() {
        MemoryLedger ledger = new MemoryLedger();
        Map<MemoryCategory, long[]> expected = replay(ledger, Device.CPU, 5);
        long cap = 0, use = 0;
        for (var e : expected.entrySet()) {
            MemoryLedger.Entry got = ledger.entry(Device.CPU, e.getKey());
            assertEquals(e.getValue()[0], got.capacity(), e.getKey() + " capacity");
            assertEquals(e.getValue()[1], got.inUse(), e.getKey() + " in use");
            assertEquals(e.getValue()[2], got.peak(), e.getKey() + " peak");
            cap += got.capacity();
            use += got.inUse();
        }
        assertEquals(cap, ledger.totalCapacity(Device.CPU));
        assertEquals(use, ledger.totalInUse(Device.CPU));
        for (MemoryArena a : ledger.arenas()) a.close();
        assertEquals(0, ledger.totalCapacity(Device.CPU), "closing every arena gives every byte back");
        assertEquals(0, ledger.totalInUse(Device.CPU));
    }

    @Test
    void largestLabelsRankByPeakAndTheTableNamesEveryCategory() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena w = new MemoryArena(ledger, "w", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20);
             MemoryArena act = new MemoryArena(ledger, "act", MemoryCategory.ACTIVATIONS, Device.CPU, 1 << 20)) {
            for (int n : new int[]{1, 100, 1000, 4097}) w.allocate(n * 4L, "p" + n);
            long mark = act.mark();
            act.allocate(10_000, "big");
            act.allocate(300, "small");
            act.release(mark); // released, but its peak still counts
            assertEquals(List.of(Map.entry("p4097", MemoryArena.alignUp(4097 * 4)), Map.entry("big", MemoryArena.alignUp(10_000)),
                    Map.entry("p1000", MemoryArena.alignUp(4000))), ledger.largestLabels(3));
            String table = ledger.table();
            assertTrue(table.contains("weights") && table.contains("activations") && table.contains("total"), table);
        }
    }

    @Test
    void metaLedgerEqualsCpuLedger() {
        MemoryLedger cpu = new MemoryLedger(), meta = new MemoryLedger();
        replay(cpu, Device.CPU, 9);
        replay(meta, Device.META, 9);
        List<MemoryLedger.Entry> c = cpu.entries(), m = meta.entries();
        assertEquals(c.size(), m.size());
        for (int i = 0; i < c.size(); i++) {
            assertEquals(c.get(i).category(), m.get(i).category());
            assertEquals(c.get(i).capacity(), m.get(i).capacity(), c.get(i).category() + " capacity");
            assertEquals(c.get(i).inUse(), m.get(i).inUse(), c.get(i).category() + " in use");
            assertEquals(c.get(i).peak(), m.get(i).peak(), c.get(i).category() + " peak");
        }
        assertEquals(cpu.largestLabels(5), meta.largestLabels(5));
        for (MemoryArena a : cpu.arenas()) a.close();
        for (MemoryArena a : meta.arenas()) a.close();
    }
}
