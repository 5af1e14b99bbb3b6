package dev.tally.engine;

/**
 * One booking inside an arena: the bytes behind one or more tensor views. It goes stale when the arena closes, when it
 * is freed, or when a mark below it is released; reading a stale storage throws instead of reading reused memory.
 */
public final class Storage {
    private final MemoryArena arena;
    private final long byteOffset;
    private final long byteSize;
    private final String label;
    private boolean alive = true;

    Storage(MemoryArena arena, long byteOffset, long byteSize, String label) {
        this.arena = arena;
        this.byteOffset = byteOffset;
        this.byteSize = byteSize;
        this.label = label;
    }

    public MemoryArena arena() { return arena; }
    public long byteOffset() { return byteOffset; }
    /** Booked bytes (the request rounded up to the arena alignment). */
    public long byteSize() { return byteSize; }
    public String label() { return label; }
    public Device device() { return arena.device(); }

    public boolean isAlive() { return alive && !arena.isClosed(); }

    void kill() { alive = false; }

    /** Throws a clear error when this storage can no longer be read or written. */
    public void checkAlive() {
        if (arena.isClosed()) {
            throw new IllegalStateException("arena '" + arena.name() + "' (" + arena.category().label()
                    + ") is closed: tensor '" + label + "' can no longer be used");
        }
        if (!alive) {
            throw new IllegalStateException("tensor '" + label + "' in arena '" + arena.name()
                    + "' was freed (or released by a mark) and can no longer be used");
        }
    }

    @Override public String toString() {
        return "Storage[" + label + " @" + arena.name() + "+" + byteOffset + ", " + byteSize + " B]";
    }
}
