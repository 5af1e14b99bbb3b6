package dev.tally.engine.memory;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.plan.MemoryPlan;
import dev.tally.engine.plan.PlannedAllocator;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Poisoned bookings (NaN on hand-out and on free) make a wrong plan and a read after free visible. */
class PoisonTest {
    private final Ops ops = Backends.of(Device.CPU).ops();

    /** Doubles a (all ones) into out after b was handed out; returns Σ out (256 when a was left intact). */
    private double sumAfterWrongPlan(boolean poison) {
        // a deliberately wrong plan: b is placed on a's bytes while a is still live
        MemoryPlan wrong = new MemoryPlan(new long[] {0, 0, 512}, new long[] {512, 512, 512}, new String[] {"a", "b", "out"}, 1024, 1536);
        try (MemoryArena arena = new MemoryArena(new MemoryLedger(), "activations", MemoryCategory.ACTIVATIONS, Device.CPU, 2048,
                new PlannedAllocator(wrong)).poisonBookings(poison); MemoryArena small = new MemoryArena(new MemoryLedger(), "sum",
                MemoryCategory.OTHER, Device.CPU, 256)) {
            Tensor a = arena.allocate("a", DType.F32, 128);
            ops.fill(a, 1.0);
            Tensor b = arena.allocate("b", DType.F32, 128); // not yet written: without poison, a's values stay put
            Tensor out = arena.allocate("out", DType.F32, 128);
            ops.binaryScalar(BinaryOp.MUL, a, 2.0, out);
            Tensor sum = small.allocate("sum", DType.F32, 1);
            ops.reduceAll(ReduceOp.SUM, out, sum);
            assertTrue(b.storage().isAlive());
            return sum.item();
        }
    }

    @Test
    void aPlanThatOverlapsLiveBuffersPassesSilentlyUnpoisonedAndTurnsNaNPoisoned() {
        assertEquals(256.0, sumAfterWrongPlan(false), "unpoisoned, the overlap goes unnoticed");
        assertTrue(Double.isNaN(sumAfterWrongPlan(true)), "poisoned, the overlap turns the result NaN");
    }

    @Test
    void freedBytesReadNaN() {
        try (MemoryArena arena = new MemoryArena(new MemoryLedger(), "activations", MemoryCategory.ACTIVATIONS, Device.CPU, 4096).poisonBookings(true)) {
            Tensor keep = arena.allocate("keep", DType.F32, 64);
            Tensor t = arena.allocate("t", DType.BF16, 100);
            ops.fill(keep, 3.0);
            ops.fill(t, 1.0);
            MemorySegment raw = t.segment(); // memory reached without the tensor's liveness check
            arena.free(t);
            for (long i = 0; i < 100; i++) assertEquals((short) 0xFFFF, raw.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, t.offset() + i), "bf16 NaN at " + i);
            assertEquals(3.0, keep.slice(0, 0, 1).item(), "a live neighbour is untouched");
            Tensor fresh = arena.allocate("fresh", DType.F32, 10);
            assertTrue(Double.isNaN(fresh.slice(0, 0, 1).item()), "a new booking reads NaN until written");
        }
    }
}
