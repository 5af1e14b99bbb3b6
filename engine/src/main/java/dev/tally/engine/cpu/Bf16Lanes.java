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
 * even and turns a NaN into a quiet NaN of the same sign. Small enough for C2 to inline at every call, so no vector is
 * boxed on the way.
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

    /** v rounded to bf16 (nearest even; NaN kept quiet) into L elements from element index {@code at} of {@code seg}. */
    static void narrowInto(FloatVector v, MemorySegment seg, long at) {
        IntVector bits = v.reinterpretAsInts();
        IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = bits.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
        IntVector out = rounded.blend(bits.lanewise(VectorOperators.LSHR, 16).or(0x0040), nan);
        ((ShortVector) out.convertShape(VectorOperators.I2S, HALF, 0)).intoMemorySegment(seg, at * 2, NATIVE);
    }
}
