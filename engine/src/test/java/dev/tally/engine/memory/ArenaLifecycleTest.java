package dev.tally.engine.memory;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.ArenaOverflowException;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.Storage;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MemoryArena regions on real devices: alignment, zero size, overflow, and every way a tensor goes stale. */
class ArenaLifecycleTest {

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.CasesAccess#devices")
    void overflowNamesTheArenaAndTheRequest(Device device) {
        TestDevices.assumeUsable(device);
        try (MemoryArena arena = new MemoryArena(new MemoryLedger(), "acts", MemoryCategory.ACTIVATIONS, device, 1000)) {
            assertEquals(1024, arena.capacity(), "capacity rounds up to the 256-byte alignment");
            arena.allocate("h", DType.F32, 200); // 800 B -> 1024 booked
            ArenaOverflowException e = assertThrows(ArenaOverflowException.class, () -> arena.allocate("logits", DType.F32, 10));
            String m = e.getMessage();
            assertTrue(m.contains("'acts'") && m.contains("activations") && m.contains("capacity 1024") && m.contains("used 1024")
                    && m.contains("'logits'") && m.contains("requested 256"), m);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.CasesAccess#devices")
    void zeroByteArenaAndEmptyTensors(Device device) {
        TestDevices.assumeUsable(device);
        try (MemoryArena arena = TestArenas.open(device, 0)) {
            assertEquals(0, arena.capacity());
            Tensor empty = arena.allocate("empty", DType.F32, 0, 3);
            Ops ops = empty.ops();
            ops.fill(empty, 1);
            ops.binary(BinaryOp.ADD, empty, empty, empty);
            assertEquals(0, empty.toDoubleArray().length);
            assertThrows(ArenaOverflowException.class, () -> arena.allocate("one", DType.F32, 1));
        }
    }

    @Test
    void cpuRegionsAreAlignedAndExactlySized() {
        try (MemoryArena arena = TestArenas.open(Device.CPU, 4096)) {
            MemorySegment seg = arena.region().segment();
            assertEquals(0, seg.address() % MemoryArena.ALIGNMENT, "region base alignment");
            assertEquals(4096, seg.byteSize());
            Tensor a = arena.allocate("a", DType.BF16, 3);
            Tensor b = arena.allocate("b", DType.F32, 5);
            assertEquals(0, b.address() % MemoryArena.ALIGNMENT, "second booking alignment");
            assertEquals(256, b.address() - a.address());
            // raw byte bookings: each rounds up to whole 256-byte units, placed one after the other
            Storage one = arena.allocate(1, "one byte"), more = arena.allocate(257, "257 bytes");
            assertEquals(512, one.byteOffset());
            assertEquals(256, one.byteSize());
            assertEquals(768, more.byteOffset());
            assertEquals(512, more.byteSize());
            assertEquals(1280, arena.used());
        }
    }

    @Test
    void metaArenasReserveNothingAndHoldNoData() {
        MemoryLedger ledger = new MemoryLedger();
        MemoryArena arena = new MemoryArena(ledger, "m", MemoryCategory.WEIGHTS, Device.META, 1L << 40); // a terabyte: nothing reserved
        arena.allocate("huge", DType.F32, 1 << 20, 1 << 16);
        assertEquals(1L << 38, ledger.entry(Device.META, MemoryCategory.WEIGHTS).inUse());
        Tensor small = arena.allocate("small", DType.F32, 4);
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, small::toFloatArray);
        assertTrue(e.getMessage().contains("META"), e.getMessage());
        arena.close();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.CasesAccess#devices")
    void useAfterCloseFailsWithTheArenaName(Device device) {
        TestDevices.assumeUsable(device);
        MemoryArena arena = new MemoryArena(new MemoryLedger(), "weights", MemoryCategory.WEIGHTS, device, 1024);
        Tensor w = arena.allocate("wq", DType.F32, 4).copyFrom(new float[]{1, 2, 3, 4});
        Tensor out = TestArenas.open(device).allocate("out", DType.F32, 4);
        arena.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, w::toDoubleArray);
        assertTrue(e.getMessage().contains("'weights'") && e.getMessage().contains("closed") && e.getMessage().contains("'wq'"), e.getMessage());
        Ops ops = out.ops();
        e = assertThrows(IllegalStateException.class, () -> ops.unary(dev.tally.engine.UnaryOp.EXP, w, out));
        assertTrue(e.getMessage().contains("'wq'"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> ops.fill(w, 0));
        assertThrows(IllegalStateException.class, () -> arena.allocate("late", DType.F32, 1));
        arena.close(); // closing twice is harmless
        out.arena().close();
    }

    @Test
    void rawCpuMemoryIsReallyFreedOnClose() {
        MemoryArena arena = TestArenas.open(Device.CPU, 1024);
        Tensor t = arena.allocate("t", DType.F32, 4);
        MemorySegment seg = t.segment(); // a segment taken before close must not reach freed memory afterwards
        arena.close();
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_FLOAT, 0));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.CasesAccess#devices")
    void useAfterFreeAndAfterReleaseFail(Device device) {
        TestDevices.assumeUsable(device);
        try (MemoryArena arena = TestArenas.open(device, 4096)) {
            Tensor keep = arena.allocate("keep", DType.F32, 4);
            Tensor gone = arena.allocate("gone", DType.F32, 4);
            Ops ops = keep.ops();
            arena.free(gone);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ops.fill(gone, 1));
            assertTrue(e.getMessage().contains("'gone'") && e.getMessage().contains("freed"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> arena.free(gone), "double free");
            long mark = arena.mark();
            Tensor step;
            try (var scope = arena.scope()) {
                step = arena.allocate("step-local", DType.F32, 4);
                ops.fill(step, 2);
            }
            assertEquals(mark, arena.mark(), "closing the scope releases back to where it opened");
            e = assertThrows(IllegalStateException.class, () -> ops.copy(step, keep));
            assertTrue(e.getMessage().contains("'step-local'"), e.getMessage());
            Tensor later = arena.allocate("later", DType.F32, 4);
            arena.release(mark);
            assertThrows(IllegalStateException.class, later::toDoubleArray);
            ops.fill(keep, 3); // bookings below the mark stay usable
            assertEquals(3.0, keep.toDoubleArray()[3]);
        }
    }
}
