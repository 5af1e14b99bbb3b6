package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Element access to a tensor's storage by absolute element index (view offset + Σ index·stride), any dtype, through
 * float/double. Obtaining a Buf checks that the storage is still alive.
 */
final class Buf {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG_UNALIGNED;

    final MemorySegment seg;
    final DType dtype;

    Buf(Tensor t) {
        this.seg = t.segment();
        this.dtype = t.dtype();
    }

    float get(long i) {
        return switch (dtype) {
            case F32 -> seg.getAtIndex(F, i);
            case BF16 -> DType.bf16ToF32(seg.getAtIndex(S, i));
            case F16 -> DType.f16ToF32(seg.getAtIndex(S, i));
            case I8 -> seg.get(ValueLayout.JAVA_BYTE, i);
            case U8 -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
            case I32 -> seg.getAtIndex(I, i);
            case I64 -> seg.getAtIndex(L, i);
        };
    }

    long getLong(long i) {
        return switch (dtype) {
            case I64 -> seg.getAtIndex(L, i);
            case I32 -> seg.getAtIndex(I, i);
            case I8 -> seg.get(ValueLayout.JAVA_BYTE, i);
            case U8 -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
            default -> (long) get(i);
        };
    }

    void set(long i, double v) {
        switch (dtype) {
            case F32 -> seg.setAtIndex(F, i, (float) v);
            case BF16 -> seg.setAtIndex(S, i, DType.f32ToBf16((float) v));
            case F16 -> seg.setAtIndex(S, i, DType.f32ToF16((float) v));
            case I8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) Math.rint(v));
            case U8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) (int) Math.rint(v));
            case I32 -> seg.setAtIndex(I, i, (int) v);
            case I64 -> seg.setAtIndex(L, i, (long) v);
        }
    }

    void setLong(long i, long v) {
        switch (dtype) {
            case I64 -> seg.setAtIndex(L, i, v);
            case I32 -> seg.setAtIndex(I, i, (int) v);
            case I8, U8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) v);
            default -> set(i, v);
        }
    }
}
