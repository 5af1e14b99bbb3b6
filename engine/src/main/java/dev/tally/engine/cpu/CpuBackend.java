package dev.tally.engine.cpu;

import java.lang.foreign.Arena;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backend;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Region;

import java.lang.foreign.MemorySegment;

/** The CPU device: arenas are single FFM allocations, ops run in Java (Vector API where it pays). */
public final class CpuBackend implements Backend {
    private final Device device;
    private final CpuOps ops;

    public CpuBackend(Device device) {
        if (!(device instanceof Device.Cpu)) throw new IllegalArgumentException("CpuBackend cannot serve device " + device);
        this.device = device;
        this.ops = new CpuOps(device);
    }

    @Override public Device device() { return device; }

    @Override public Ops ops() { return ops; }

    /** Free physical memory (arenas are off-heap, so the Java heap limit does not bound them); the JVM's max heap if unknown. */
    @Override public long availableBytes() {
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getFreeMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }

    @Override public Region reserve(long bytes, String arenaName) {
        if (bytes < 0) throw new IllegalArgumentException("arena '" + arenaName + "': negative size " + bytes);
        Arena memory = Arena.ofShared();
        MemorySegment segment;
        try {
            segment = memory.allocate(bytes, MemoryArena.ALIGNMENT);
        } catch (OutOfMemoryError | IllegalArgumentException e) {
            memory.close();
            throw new IllegalStateException("arena '" + arenaName + "': could not reserve " + bytes + " B of host memory: " + e.getMessage(), e);
        }
        return new HostRegion(memory, segment, arenaName);
    }

    /** One FFM allocation; closing it frees the memory, after which any access through the segment throws. */
    private static final class HostRegion implements Region {
        private final Arena memory;
        private final MemorySegment segment;
        private final String name;
        private boolean closed;

        HostRegion(Arena memory, MemorySegment segment, String name) {
            this.memory = memory;
            this.segment = segment;
            this.name = name;
        }

        @Override public long byteSize() { return segment.byteSize(); }

        @Override public MemorySegment segment() {
            if (closed) throw new IllegalStateException("arena '" + name + "' is closed: its memory was freed");
            return segment;
        }

        @Override public long address() { return segment.address(); }

        @Override public synchronized void close() {
            if (closed) return;
            closed = true;
            memory.close();
        }

        @Override public String toString() { return "HostRegion[" + name + ", " + segment.byteSize() + " B]"; }
    }
}
