package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * {@code a ∘ b} where b is a one-element F32 tensor (a loss's dLoss / count scale applied to a logit tile) and a, out are
 * contiguous F32 of one shape: b's value broadcast into a vector. The profile of CCE's backward had these calls on the
 * generic strided kernel as its largest item. fp32 add, subtract, multiply, divide, max and min are correctly rounded,
 * so they give the generic kernel's double-then-round bits exactly.
 */
final class OneElementOperand {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private OneElementOperand() {}

    static boolean binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        switch (op) {
            case ADD, SUB, MUL, DIV, MAX, MIN -> { }
            default -> { return false; }
        }
        if (b.numel() != 1 || !ContiguousF32Kernels.f32(a, b, out) || !a.shape().equals(out.shape())) return false;
        float bv = b.segment().getAtIndex(Buf.F, b.offset());
        MemorySegment sa = a.segment(), so = out.segment();
        long ao = a.offset(), oo = out.offset(), n = out.numel();
        FloatVector vb = FloatVector.broadcast(S, bv);
        ContiguousF32Kernels.forElements(n, (lo, hi) -> {
            long i = lo;
            for (; i + L <= hi; i += L) {
                FloatVector x = FloatVector.fromMemorySegment(S, sa, (ao + i) * 4, NATIVE);
                FloatVector r = switch (op) {
                    case ADD -> x.add(vb);
                    case SUB -> x.sub(vb);
                    case MUL -> x.mul(vb);
                    case DIV -> x.div(vb);
                    case MAX -> x.max(vb);
                    default -> x.min(vb);
                };
                r.intoMemorySegment(so, (oo + i) * 4, NATIVE);
            }
            for (; i < hi; i++) so.setAtIndex(Buf.F, oo + i, (float) Elementwise.binary(op, sa.getAtIndex(Buf.F, ao + i), bv));
        });
        return true;
    }
}
