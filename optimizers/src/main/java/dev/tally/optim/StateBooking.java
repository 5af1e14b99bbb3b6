package dev.tally.optim;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.List;

/**
 * Booking optimizer state, apart from stepping and serialising it: bytes from the state specs alone, then one
 * optimizer_state arena per batch of parameters (all of them at allocateState, each group added later its own), every
 * state tensor zeroed, the 8-bit code maps once per optimizer.
 */
final class StateBooking {
    private StateBooking() {}

    /** The two 256-entry fp32 code maps of 8-bit methods. */
    static long codeMapBytes() { return 2 * MemoryArena.bookedBytes(DType.F32, Shape.of(256)); }

    /** Bytes of the state of these parameters, from their specs (what {@link #book} reserves for them). */
    static long bytes(List<Slot> slots) {
        long total = 0;
        for (Slot s : slots) for (StateSpec spec : s.specs()) total += spec.bookedBytes();
        return total;
    }

    /** A booked batch: its arena, and the code maps when this batch carries them. */
    record Booked(MemoryArena arena, Step.CodeMaps codes) {}

    /** Reserves one arena in {@code ledger} for {@code slots}' state (plus the code maps if asked) and fills their state maps. */
    static Booked book(MemoryLedger ledger, String arenaName, Device device, List<Slot> slots, boolean withCodeMaps) {
        long bytes = bytes(slots) + (withCodeMaps ? codeMapBytes() : 0);
        MemoryArena arena = new MemoryArena(ledger, arenaName, MemoryCategory.OPTIMIZER_STATE, device, bytes);
        Step.CodeMaps codes = null;
        if (withCodeMaps) {
            codes = new Step.CodeMaps(arena.allocate("optimizer.qmap_signed", DType.F32, 256), arena.allocate("optimizer.qmap_unsigned", DType.F32, 256));
            if (device.hasMemory()) {
                codes.signed().copyFrom(DynamicMap.create(true));
                codes.unsigned().copyFrom(DynamicMap.create(false));
            }
        }
        for (Slot s : slots) {
            for (StateSpec spec : s.specs()) {
                Tensor t = arena.allocate("optimizer." + spec.kind().name().toLowerCase() + "." + s.param.name() + "." + spec.name(),
                        spec.dtype(), spec.shape());
                t.ops().fill(t, 0);
                s.state.tensors.put(spec.name(), t);
            }
        }
        return new Booked(arena, codes);
    }
}
