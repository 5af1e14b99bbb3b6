package dev.tally.engine;

/** A device's implementation: how it reserves memory for an arena, and its primitive ops. */
public interface Backend {
    Device device();

    /** Reserves one region of exactly {@code bytes} (aligned to {@link Arena#ALIGNMENT}) for the arena named {@code arenaName}. */
    Region reserve(long bytes, String arenaName);

    Ops ops();

    /**
     * Writes the memory this device holds outside arenas (CUDA context, library handles and workspaces, allocation
     * granularity) into {@code ledger} as {@link MemoryCategory#RUNTIME} via {@link MemoryLedger#reportExternal}, so the
     * ledger's total is what the device reports in use. Nothing for devices without such memory.
     */
    default void reportRuntimeMemory(MemoryLedger ledger) {}
}
