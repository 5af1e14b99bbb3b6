package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * {@code a ∘ s} over contiguous F32 tensors for a scalar that is not exact in fp32 (an optimizer's lr / bias-correction
 * factors, eps = 1e-8): each element is widened to double, combined with the double scalar and rounded once to fp32 —
 * exactly the generic kernel's arithmetic, so the bits do not change, only the speed (the profile of an AdamW step
 * showed these calls on the generic path at ~20 ns per element). Every step is a correctly rounded IEEE operation, so
 * the result is the same in the interpreter and in compiled code.
 */
final class DoubleScalar {
    static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    /** Floats as many as D's doubles, so each float vector widens to one double vector. */
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(D.vectorBitSize() / 2));
    private static final int L = D.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private DoubleScalar() {}

    static boolean binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        switch (op) {
            case ADD, SUB, MUL, DIV -> { }
            default -> { return false; }
        }
        if (!ContiguousF32Kernels.f32(a, out) || !available()) return false;
        MemorySegment sa = a.segment(), so = out.segment();
        long ao = a.offset(), oo = out.offset(), n = out.numel();
        DoubleVector vs = DoubleVector.broadcast(D, s);
        ContiguousF32Kernels.forElements(n, (lo, hi) -> {
            long i = lo;
            for (; i + L <= hi; i += L) apply(op, FloatVector.fromMemorySegment(F, sa, (ao + i) * 4, NATIVE), vs).intoMemorySegment(so, (oo + i) * 4, NATIVE);
            for (; i < hi; i++) so.setAtIndex(Buf.F, oo + i, (float) Elementwise.binary(op, sa.getAtIndex(Buf.F, ao + i), s));
        });
        return true;
    }

    /** x ∘ s for a vector of species {@link #F}: widened to double, combined, rounded once to fp32 (ADD, SUB, MUL, DIV). */
    static FloatVector apply(BinaryOp op, FloatVector x, DoubleVector s) {
        DoubleVector d = (DoubleVector) x.convertShape(VectorOperators.F2D, D, 0);
        DoubleVector r = switch (op) {
            case ADD -> d.add(s);
            case SUB -> d.sub(s);
            case MUL -> d.mul(s);
            case DIV -> d.div(s);
            default -> throw new IllegalStateException("no double-scalar form for " + op);
        };
        return (FloatVector) r.convertShape(VectorOperators.D2F, F, 0);
    }

    /** Whether {@link #apply} vectors line up (a float vector of species F widens to exactly one double vector). */
    static boolean available() { return F.length() == L; }
}
