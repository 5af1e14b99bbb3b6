package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Typed element access to a tensor's storage on the host. Indices are element offsets from the start of the storage
 * (a tensor's {@code offset + Σ index·stride}). Reads widen to double, writes round to the dtype (bf16/f16
 * round-to-nearest-even). Obtaining a Buf checks the storage is alive, so stale tensors fail with a named error.
 */
record Buf(MemorySegment seg, DType dt) {
    static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED;
    static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
    static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG_UNALIGNED;

    static Buf of(Tensor t) {
        return new Buf(t.segment(), t.dtype());
    }

    double get(long i) {
        return switch (dt) {
            case F32 -> seg.getAtIndex(F, i);
            case BF16 -> DType.bf16ToF32(seg.getAtIndex(S, i));
            case F16 -> DType.f16ToF32(seg.getAtIndex(S, i));
            case I8 -> seg.get(ValueLayout.JAVA_BYTE, i);
            case U8 -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
            case I32 -> seg.getAtIndex(I, i);
            case I64 -> seg.getAtIndex(L, i);
        };
    }

    float getF(long i) {
        return switch (dt) {
            case F32 -> seg.getAtIndex(F, i);
            case BF16 -> DType.bf16ToF32(seg.getAtIndex(S, i));
            case F16 -> DType.f16ToF32(seg.getAtIndex(S, i));
            default -> (float) get(i);
        };
    }

    long getLong(long i) {
        return switch (dt) {
            case I64 -> seg.getAtIndex(L, i);
            case I32 -> seg.getAtIndex(I, i);
            case I8 -> seg.get(ValueLayout.JAVA_BYTE, i);
            case U8 -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
            default -> (long) get(i);
        };
    }

    /** Writes v rounded to the dtype; integer dtypes truncate toward zero (and wrap like a C cast). */
    void set(long i, double v) {
        switch (dt) {
            case F32 -> seg.setAtIndex(F, i, (float) v);
            case BF16 -> seg.setAtIndex(S, i, DType.f32ToBf16((float) v));
            case F16 -> seg.setAtIndex(S, i, DType.f32ToF16((float) v));
            case I8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) (long) v);
            case U8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) (long) v);
            case I32 -> seg.setAtIndex(I, i, (int) (long) v);
            case I64 -> seg.setAtIndex(L, i, (long) v);
        }
    }

    void setLong(long i, long v) {
        switch (dt) {
            case I64 -> seg.setAtIndex(L, i, v);
            case I32 -> seg.setAtIndex(I, i, (int) v);
            case I8, U8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) v);
            default -> set(i, v);
        }
    }
}
