package dev.tally.engine;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArenaAndLedgerTest {

    @Test
    void overflowNamesArenaCategoryCapacityUsedAndRequest() {
        MemoryLedger ledger = new MemoryLedger();
        try (Arena a = new Arena(ledger, "acts", MemoryCategory.ACTIVATIONS, Device.CPU, 1024)) {
            a.allocate(600, "x");
            ArenaOverflowException e = assertThrows(ArenaOverflowException.class, () -> a.allocate(500, "y"));
            String m = e.getMessage();
            assertTrue(m.contains("'acts'") && m.contains("activations") && m.contains("capacity 1024")
                    && m.contains("used 768") && m.contains("requested 512") && m.contains("'y'"), m);
        }
    }

    @Test
    void allocationsAre256ByteAlignedAndSizedUpFront() {
        MemoryLedger ledger = new MemoryLedger();
        try (Arena a = new Arena(ledger, "w", MemoryCategory.WEIGHTS, Device.CPU, 1000)) {
            assertEquals(1024, a.capacity());
            Storage s1 = a.allocate(1, "a"), s2 = a.allocate(257, "b");
            assertEquals(0, s1.byteOffset());
            assertEquals(256, s2.byteOffset());
            assertEquals(512, s2.byteSize());
            assertEquals(0, a.region().segment().address() % 256, "region base aligned");
            assertEquals(768, a.used());
        }
    }

    @Test
    void readingAfterCloseThrowsInsteadOfReadingFreedMemory() {
        MemoryLedger ledger = new MemoryLedger();
        Arena a = new Arena(ledger, "tmp", MemoryCategory.WORKSPACE, Device.CPU, 4096);
        Tensor t = a.allocate("x", DType.F32, 4);
        t.copyFrom(new float[] {1, 2, 3, 4});
        a.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, t::toFloatArray);
        assertTrue(e.getMessage().contains("closed") && e.getMessage().contains("'tmp'"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> a.allocate(8, "late"));
        assertEquals(0, ledger.totalCapacity(Device.CPU));
    }

    @Test
    void freedAndReleasedStoragesCannotBeRead() {
        MemoryLedger ledger = new MemoryLedger();
        try (Arena a = new Arena(ledger, "step", MemoryCategory.ACTIVATIONS, Device.CPU, 8192)) {
            Tensor keep = a.allocate("keep", DType.F32, 8);
            long mark = a.mark();
            Tensor scratch;
            try (var scope = a.scope()) {
                scratch = a.allocate("scratch", DType.F32, 8);
                scratch.ops().fill(scratch, 1);
            }
            assertThrows(IllegalStateException.class, scratch::toFloatArray);
            assertEquals(mark, a.mark());
            keep.ops().fill(keep, 2);
            assertEquals(2f, keep.toFloatArray()[0]);
            Tensor z = a.allocate("z", DType.F32, 8);
            a.free(z);
            IllegalStateException e = assertThrows(IllegalStateException.class, z::toFloatArray);
            assertTrue(e.getMessage().contains("freed"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> a.free(z));
        }
    }

    @Test
    void ledgerSumsEqualTheBookingsAndTrackPeaks() {
        MemoryLedger ledger = new MemoryLedger();
        try (Arena w = new Arena(ledger, "w", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20);
             Arena act = new Arena(ledger, "act", MemoryCategory.ACTIVATIONS, Device.CPU, 1 << 20)) {
            long booked = 0;
            for (int n : new int[] {1, 100, 1000, 4097}) booked += w.allocate(n * 4L, "p" + n).byteSize();
            assertEquals(booked, ledger.entry(Device.CPU, MemoryCategory.WEIGHTS).inUse());
            long m = act.mark();
            act.allocate(10_000, "big");
            act.allocate(300, "small");
            act.release(m);
            MemoryLedger.Entry e = ledger.entry(Device.CPU, MemoryCategory.ACTIVATIONS);
            assertEquals(0, e.inUse());
            assertEquals(Arena.alignUp(10_000) + Arena.alignUp(300), e.peak());
            assertEquals(2L << 20, ledger.totalCapacity(Device.CPU));
            assertEquals("p4097", ledger.largestLabels(1).get(0).getKey(), "largest label by peak bytes");
            String table = ledger.table();
            assertTrue(table.contains("weights") && table.contains("activations") && table.contains("total"), table);
        }
    }

    @Test
    void metaLedgerEqualsCpuLedgerForTheSameAllocations() {
        List<MemoryLedger> ledgers = new java.util.ArrayList<>();
        for (Device d : List.of(Device.CPU, Device.META)) {
            MemoryLedger ledger = new MemoryLedger();
            ledgers.add(ledger);
            Arena w = new Arena(ledger, "w", MemoryCategory.WEIGHTS, d, 3 << 20);
            Arena a = new Arena(ledger, "a", MemoryCategory.ACTIVATIONS, d, 1 << 20);
            w.allocate("emb", DType.BF16, 1000, 64);
            w.allocate("norm", DType.F32, 64);
            long m = a.mark();
            Tensor x = a.allocate("x", DType.F32, 17, 64);
            Tensor y = a.allocate("y", DType.F32, 17, 64);
            x.ops().binary(BinaryOp.ADD, x, x, y); // META validates and computes nothing
            a.release(m);
            a.allocate("z", DType.BF16, 5, 5);
        }
        MemoryLedger cpu = ledgers.get(0), meta = ledgers.get(1);
        for (MemoryCategory c : MemoryCategory.values()) {
            MemoryLedger.Entry ec = cpu.entry(Device.CPU, c), em = meta.entry(Device.META, c);
            assertEquals(ec.capacity(), em.capacity(), c.label());
            assertEquals(ec.inUse(), em.inUse(), c.label());
            assertEquals(ec.peak(), em.peak(), c.label());
        }
        assertFalse(cpu.entries().isEmpty());
    }

    @Test
    void metaTensorsHoldNoData() {
        MemoryLedger ledger = new MemoryLedger();
        Arena a = new Arena(ledger, "m", MemoryCategory.WEIGHTS, Device.META, 1L << 40); // a terabyte: nothing reserved
        a.allocate("huge", DType.F32, 1 << 20, 1 << 16);
        assertEquals(1L << 38, ledger.entry(Device.META, MemoryCategory.WEIGHTS).inUse());
        Tensor small = a.allocate("small", DType.F32, 4);
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, small::toFloatArray);
        assertTrue(e.getMessage().contains("META"), e.getMessage());
    }

    @Test
    void viewsCheckBoundsAndReshapeOnlyWhenLegal() {
        MemoryLedger ledger = new MemoryLedger();
        try (Arena a = new Arena(ledger, "v", MemoryCategory.OTHER, Device.CPU, 4096)) {
            Tensor t = a.allocate("t", DType.F32, 4, 6);
            assertEquals(Shape.of(6, 4), t.t().shape());
            assertEquals(Shape.of(2, 12), t.reshape(2, -1).shape());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.t().reshape(24));
            assertTrue(e.getMessage().contains("non-contiguous"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.slice(1, 2, 7));
            assertThrows(IllegalArgumentException.class, () -> t.reshape(5, 5));
            assertEquals(Shape.of(3, 4, 6), t.unsqueeze(0).expand(Shape.of(3, 4, 6)).shape());
        }
    }
}
