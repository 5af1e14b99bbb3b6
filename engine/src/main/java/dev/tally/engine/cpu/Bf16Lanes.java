package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * bf16 ↔ fp32 a vector at a time, with the bits of the scalar conversions ({@link DType#bf16ToF32},
 * {@link DType#f32ToBf16}): widening puts the 16 bits in the top half of the float (exact); narrowing rounds to nearest
 * even and turns a NaN into a quiet NaN of the same sign.
 *
 * <p>Only {@link #widen} hands a vector to its caller, and only for the preferred species: a helper shared by two species
 * or compiled on its own before its callers is not inlined by C2 (its type profile mixes the shapes, or it is "already
 * compiled into a big method"), and then every vector it returns is boxed, 50 times slower. The row conversions keep
 * their vectors inside.
 */
final class Bf16Lanes {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** L bf16 values: the half-width short vector that widens to one float vector. */
    private static final VectorSpecies<Short> HALF = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, S.vectorShape());
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private Bf16Lanes() {}

    /** L bf16 values from element index {@code at} of {@code seg}, widened to fp32. */
    static FloatVector widen(MemorySegment seg, long at) {
        return ((IntVector) ShortVector.fromMemorySegment(HALF, seg, at * 2, NATIVE).convertShape(VectorOperators.S2I, INTS, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** n bf16 values from element {@code from} of {@code src} widened into floats from element {@code to} of {@code dst}. */
    static void widenRow(MemorySegment src, long from, MemorySegment dst, long to, int n) {
        int c = 0;
        for (; c + L <= n; c += L) {
            ((IntVector) ShortVector.fromMemorySegment(HALF, src, (from + c) * 2, NATIVE).convertShape(VectorOperators.S2I, INTS, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoMemorySegment(dst, (to + c) * 4, NATIVE);
        }
        for (; c < n; c++) dst.setAtIndex(Buf.F, to + c, DType.bf16ToF32(src.getAtIndex(Buf.S, from + c)));
    }

    /** n floats from element {@code from} of {@code src} rounded into bf16 values from element {@code to} of {@code dst}. */
    static void narrowRow(MemorySegment src, long from, MemorySegment dst, long to, int n) {
        int c = 0;
        for (; c + L <= n; c += L) {
            IntVector bits = FloatVector.fromMemorySegment(S, src, (from + c) * 4, NATIVE).reinterpretAsInts();
            IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF);
            VectorMask<Integer> nan = bits.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
            IntVector top = rounded.blend(bits.or(0x00400000), nan).lanewise(VectorOperators.LSHR, 16);
            ((ShortVector) top.convertShape(VectorOperators.I2S, HALF, 0)).intoMemorySegment(dst, (to + c) * 2, NATIVE);
        }
        for (; c < n; c++) dst.setAtIndex(Buf.S, to + c, DType.f32ToBf16(src.getAtIndex(Buf.F, from + c)));
    }
}
