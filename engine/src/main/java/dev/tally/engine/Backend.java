package dev.tally.engine;

/** A device's implementation: how it reserves memory for an arena, and its primitive ops. */
public interface Backend {
    Device device();

    /** Reserves one region of exactly {@code bytes} (aligned to {@link MemoryArena#ALIGNMENT}) for the arena named {@code arenaName}. */
    Region reserve(long bytes, String arenaName);

    Ops ops();

    /**
     * Bytes a new plan may still reserve on this device (what "does it fit?" is measured against): free device memory
     * on a GPU, free physical memory on the CPU; unlimited where nothing is reserved (META).
     */
    default long availableBytes() { return Long.MAX_VALUE; }

    /**
     * Writes the memory this device holds outside arenas (CUDA context, library handles and workspaces, allocation
     * granularity) into {@code ledger} as {@link MemoryCategory#RUNTIME} via {@link MemoryLedger#reportExternal}, so the
     * ledger's total is what the device reports in use. Nothing for devices without such memory.
     */
    default void reportRuntimeMemory(MemoryLedger ledger) {}
}
