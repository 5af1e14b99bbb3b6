package dev.tally.jextract;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/** {@snippet lang=c : struct dim3 { unsigned int x, y, z; } } (12 bytes, checked by headers/layout_check.c). */
public final class dim3 {
    private dim3() {}

    private static final StructLayout LAYOUT = MemoryLayout.structLayout(
            JAVA_INT.withName("x"), JAVA_INT.withName("y"), JAVA_INT.withName("z")).withName("dim3");

    public static StructLayout layout() { return LAYOUT; }

    public static MemorySegment allocate(Arena arena, int x, int y, int z) {
        MemorySegment s = arena.allocate(LAYOUT);
        s.set(JAVA_INT, 0, x);
        s.set(JAVA_INT, 4, y);
        s.set(JAVA_INT, 8, z);
        return s;
    }

    public static int x(MemorySegment s) { return s.get(JAVA_INT, 0); }
    public static int y(MemorySegment s) { return s.get(JAVA_INT, 4); }
    public static int z(MemorySegment s) { return s.get(JAVA_INT, 8); }
}
