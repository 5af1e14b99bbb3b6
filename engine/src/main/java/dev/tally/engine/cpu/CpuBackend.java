package dev.tally.engine.cpu;

import dev.tally.engine.Arena;
import dev.tally.engine.Backend;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Region;

import java.lang.foreign.MemorySegment;

/** The CPU device: each arena is one off-heap FFM allocation; ops are plain Java with Vector API kernels. */
public final class CpuBackend implements Backend {
    private final CpuOps ops = new CpuOps();

    public CpuBackend(Device device) {
        if (!(device instanceof Device.Cpu)) throw new IllegalArgumentException("CpuBackend for " + device);
    }

    @Override public Device device() { return Device.CPU; }

    @Override public Ops ops() { return ops; }

    @Override public Region reserve(long bytes, String arenaName) {
        // A shared FFM arena: closing it invalidates every segment, so a stray access throws instead of reading freed memory.
        java.lang.foreign.Arena ffm = java.lang.foreign.Arena.ofShared();
        MemorySegment seg;
        try {
            seg = ffm.allocate(Math.max(bytes, 1), Arena.ALIGNMENT);
        } catch (OutOfMemoryError | IllegalArgumentException e) {
            ffm.close();
            throw new IllegalStateException("cannot reserve " + bytes + " B of host memory for arena '" + arenaName + "': " + e.getMessage(), e);
        }
        MemorySegment region = seg.asSlice(0, bytes);
        return new Region() {
            @Override public long byteSize() { return bytes; }
            @Override public MemorySegment segment() { return region; }
            @Override public long address() { return region.address(); }
            @Override public void close() { ffm.close(); }
        };
    }
}
