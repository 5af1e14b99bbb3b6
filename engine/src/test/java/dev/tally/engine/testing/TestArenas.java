package dev.tally.engine.testing;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;

/** Small scratch arenas for tests. */
public final class TestArenas {
    private TestArenas() {}

    /** A fresh arena of {@code bytes} on {@code device} with its own ledger (close it: try-with-resources). */
    public static MemoryArena open(Device device, long bytes) {
        return new MemoryArena(new MemoryLedger(), "test-" + device, MemoryCategory.OTHER, device, bytes);
    }

    /** 16 MiB: enough for every shape the engine's op tests use. */
    public static MemoryArena open(Device device) {
        return open(device, 16L << 20);
    }
}
