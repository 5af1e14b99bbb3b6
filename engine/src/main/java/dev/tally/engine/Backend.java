package dev.tally.engine;

/** A device's implementation: how it reserves memory for an arena, and its primitive ops. */
public interface Backend {
    Device device();

    /** Reserves one region of exactly {@code bytes} (aligned to {@link Arena#ALIGNMENT}) for the arena named {@code arenaName}. */
    Region reserve(long bytes, String arenaName);

    Ops ops();
}
