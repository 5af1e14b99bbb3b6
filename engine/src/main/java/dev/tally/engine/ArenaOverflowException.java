package dev.tally.engine;

/** An arena was asked for more than its fixed capacity: the plan was wrong or the request is out of bounds. */
public final class ArenaOverflowException extends IllegalStateException {
    public ArenaOverflowException(MemoryArena arena, long requested, String label) {
        super("arena '" + arena.name() + "' (" + arena.category().label() + ", " + arena.device() + ") overflow: capacity "
                + arena.capacity() + " B, used " + arena.used() + " B, requested " + requested + " B for '" + label + "'");
    }
}
