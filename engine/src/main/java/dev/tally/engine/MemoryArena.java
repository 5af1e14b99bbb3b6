package dev.tally.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * A named, fixed-capacity block of memory of one {@link MemoryCategory} on one {@link Device}: one region reserved at
 * creation, bump-allocated (or plan-allocated) with {@value #ALIGNMENT}-byte alignment, freed all at once on close.
 * Nothing grows: asking for more than the capacity throws {@link ArenaOverflowException} naming the arena.
 *
 * <p>On META the arena reserves nothing but books exactly the same offsets, so its ledger equals a real run's.
 * Not thread-safe: one arena is used by one thread at a time (ops may use many threads inside one call).
 */
public final class MemoryArena implements AutoCloseable {
    public static final long ALIGNMENT = 256;

    private final MemoryLedger ledger;
    private final String name;
    private final MemoryCategory category;
    private final Device device;
    private final long capacity;
    private final Allocator allocator;
    private final Region region;
    private final List<Storage> live = new ArrayList<>();
    private long used;
    private long peak;
    private boolean closed;
    private boolean poison;

    /** A bump-allocated arena. */
    public MemoryArena(MemoryLedger ledger, String name, MemoryCategory category, Device device, long capacity) {
        this(ledger, name, category, device, capacity, new Allocator.Bump());
    }

    public MemoryArena(MemoryLedger ledger, String name, MemoryCategory category, Device device, long capacity, Allocator allocator) {
        if (capacity < 0) throw new IllegalArgumentException("arena '" + name + "': negative capacity " + capacity);
        this.ledger = ledger;
        this.name = name;
        this.category = category;
        this.device = device;
        this.capacity = alignUp(capacity);
        this.allocator = allocator;
        this.region = Backends.of(device).reserve(this.capacity, name);
        ledger.onReserve(this);
        java.util.function.Consumer<MemoryArena> observer = CREATION_OBSERVER.get();
        if (observer != null) observer.accept(this);
    }

    private static final ThreadLocal<java.util.function.Consumer<MemoryArena>> CREATION_OBSERVER = new ThreadLocal<>();

    /** An active {@link #observeCreations} registration; closing it stops the observation. */
    public interface Observation extends AutoCloseable {
        @Override void close();
    }

    /**
     * Hands every arena this thread creates to {@code observer} until the returned observation is closed — how tests
     * check that a whole run books every arena in the run's ledger (arenas are created on the run's thread; ops only
     * use other threads inside a call and never create arenas).
     */
    public static Observation observeCreations(java.util.function.Consumer<MemoryArena> observer) {
        java.util.function.Consumer<MemoryArena> previous = CREATION_OBSERVER.get();
        CREATION_OBSERVER.set(previous == null ? observer : previous.andThen(observer));
        return () -> CREATION_OBSERVER.set(previous);
    }

    public static long alignUp(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative byte count " + bytes);
        return (bytes + ALIGNMENT - 1) & -ALIGNMENT;
    }

    /** Bytes a tensor of this dtype and shape books in an arena (alignment included). */
    public static long bookedBytes(DType dtype, Shape shape) {
        return alignUp(Math.multiplyExact(shape.numel(), (long) dtype.byteSize()));
    }

    public String name() { return name; }
    public MemoryCategory category() { return category; }
    public Device device() { return device; }
    public long capacity() { return capacity; }
    /** Bytes currently booked. */
    public long used() { return used; }
    /** Most bytes ever booked at once. */
    public long peak() { return peak; }
    /** Highest offset+size ever handed out (= peak for a bump arena; what a plan is sized by). */
    public long highWater() { return allocator.highWater(); }
    public MemoryLedger ledger() { return ledger; }
    public boolean isClosed() { return closed; }

    /**
     * Debug mode: every booking is filled with 0xFF bytes (NaN in every float dtype) when it is handed out and when it is
     * freed, so reading memory nobody wrote, memory of a freed tensor, or memory a faulty plan gave to two live tensors
     * turns the result NaN instead of plausible numbers. Ignored on META (no memory).
     */
    public MemoryArena poisonBookings(boolean on) {
        poison = on && device.hasMemory();
        return this;
    }

    public boolean poisonsBookings() { return poison; }

    private void poison(Storage s) {
        if (s.byteSize() == 0) return;
        long rows = s.byteSize() / ALIGNMENT; // bookings are whole multiples of the alignment
        Backends.of(device).ops().fill(Tensor.contiguous(s, DType.U8, Shape.of(Math.toIntExact(rows), (int) ALIGNMENT)), 255);
    }

    /** The region behind this arena (for backends). */
    public Region region() {
        checkOpen();
        return region;
    }

    /** Books {@code bytes} (rounded up to the alignment) under {@code label}. */
    public Storage allocate(long bytes, String label) {
        checkOpen();
        long booked = alignUp(bytes);
        long at = allocator.allocate(booked, label, capacity);
        if (at < 0) throw new ArenaOverflowException(this, booked, label);
        Storage s = new Storage(this, at, booked, label);
        if (poison) poison(s);
        live.add(s);
        used += booked;
        peak = Math.max(peak, used);
        ledger.onAllocate(this, booked, label);
        return s;
    }

    /** Books a contiguous tensor. */
    public Tensor allocate(String label, DType dtype, Shape shape) {
        Storage s = allocate(Math.multiplyExact(shape.numel(), (long) dtype.byteSize()), label);
        return Tensor.contiguous(s, dtype, shape);
    }

    public Tensor allocate(String label, DType dtype, int... shape) {
        return allocate(label, dtype, Shape.of(shape));
    }

    /** Gives a booking back; the storage (and every view of it) is stale afterwards. */
    public void free(Storage s) {
        checkOpen();
        if (s.arena() != this) throw new IllegalArgumentException(s + " does not belong to arena '" + name + "'");
        if (!s.isAlive()) throw new IllegalStateException(s + " was already freed");
        if (poison) poison(s);
        s.kill();
        int idx = live.lastIndexOf(s);
        if (idx >= 0) live.remove(idx);
        allocator.free(s.byteOffset(), s.byteSize());
        used -= s.byteSize();
        ledger.onFree(this, s.byteSize(), s.label());
    }

    public void free(Tensor t) { free(t.storage()); }

    /** The current allocation point; {@link #release(long)} frees everything booked after it. */
    public long mark() {
        checkOpen();
        return allocator.mark();
    }

    public void release(long mark) {
        checkOpen();
        for (int i = live.size() - 1; i >= 0; i--) {
            Storage s = live.get(i);
            if (s.byteOffset() >= mark) {
                if (poison) poison(s);
                s.kill();
                live.remove(i);
                used -= s.byteSize();
                ledger.onFree(this, s.byteSize(), s.label());
            }
        }
        allocator.release(mark);
    }

    /** Step-local memory: {@code try (var scope = arena.scope()) { ... }} frees everything booked inside. */
    public Scope scope() { return new Scope(mark()); }

    public final class Scope implements AutoCloseable {
        private final long mark;
        private Scope(long mark) { this.mark = mark; }
        @Override public void close() {
            if (!closed) release(mark);
        }
    }

    /** Frees the region; every tensor of this arena becomes unreadable (it throws, it never reads freed memory). */
    @Override public void close() {
        if (closed) return;
        for (Storage s : live) {
            s.kill();
            ledger.onFree(this, s.byteSize(), s.label());
        }
        live.clear();
        used = 0;
        closed = true;
        region.close();
        ledger.onClose(this);
    }

    private void checkOpen() {
        if (closed) throw new IllegalStateException("arena '" + name + "' (" + category.label() + ") is closed");
    }

    @Override public String toString() {
        return "MemoryArena[" + name + ", " + category.label() + ", " + device + ", " + used + "/" + capacity + " B]";
    }
}
