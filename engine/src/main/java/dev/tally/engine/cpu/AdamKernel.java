package dev.tally.engine.cpu;

import dev.tally.engine.AdamStep;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * {@link dev.tally.engine.Ops#adamStep} in one pass over contiguous F32 tensors: each element of w, g, m and v is read
 * once and w, m, v written once, where the composition makes ten passes (the optimizer was a fifth of an AdamW step).
 *
 * <p>It reproduces the composition's bits, operation by operation: the fp32 kernels it mirrors differ between their
 * vector body and their scalar tail only in axpby ({@code (float) α · x + (float) β · y} in the body, {@code α·x + β·y}
 * in double then rounded in the tail), so elements below {@code n − n % L} (L = the preferred float vector length) take
 * the body's form and the rest the tail's. The other steps are single correctly rounded operations either way (a
 * product, quotient or square root of floats rounded from double is the correctly rounded float result), and a scalar
 * that is not exact in fp32 (lr, eps, the bias corrections) is applied in double and rounded once, as
 * {@link DoubleScalar#apply} does. {@code AdamStepOpsTest} checks fused = composed bit for bit.
 */
final class AdamKernel {
    private static final int L = FloatVector.SPECIES_PREFERRED.length();
    /** {@link DoubleScalar}'s species: lanes that widen to one double vector for the non-fp32-exact scalars. */
    private static final VectorSpecies<Float> F = DoubleScalar.F;
    private static final int W = F.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private AdamKernel() {}

    /** Returns false (the caller composes) unless every operand is contiguous F32 of one shape and the kernel applies. */
    static boolean step(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v) {
        if (!ContiguousF32Kernels.f32(w, g, m, v) || !DoubleScalar.available() || L % W != 0) return false;
        if (!g.shape().equals(w.shape()) || !m.shape().equals(w.shape()) || !v.shape().equals(w.shape())) return false;
        // the composition's axpby leaves its vector kernel for a zero coefficient (a term dropped entirely)
        if (s.beta1() == 0 || 1 - s.beta1() == 0 || s.beta2() == 0 || 1 - s.beta2() == 0) return false;
        if (overlaps(w, g) || overlaps(w, m) || overlaps(w, v) || overlaps(g, m) || overlaps(g, v) || overlaps(m, v)) return false;
        long n = w.numel(), body = n - n % L;
        MemorySegment sw = w.segment(), sg = g.segment(), sm = m.segment(), sv = v.segment();
        long wo = w.offset(), go = g.offset(), mo = m.offset(), vo = v.offset();
        double b1 = s.beta1(), c1 = 1 - s.beta1(), b2 = s.beta2(), c2 = 1 - s.beta2();
        double eps = s.eps(), divisor = s.denominatorDivisor(), stepSize = s.stepSize(), before = s.decayBefore(), after = s.decayAfter();
        float b1f = (float) b1, c1f = (float) c1, b2f = (float) b2, c2f = (float) c2, afterF = (float) after;
        DoubleVector vBefore = DoubleVector.broadcast(DoubleScalar.D, before), vDivisor = DoubleVector.broadcast(DoubleScalar.D, divisor);
        DoubleVector vEps = DoubleVector.broadcast(DoubleScalar.D, eps), vStep = DoubleVector.broadcast(DoubleScalar.D, stepSize);
        ContiguousF32Kernels.forElements(n, (lo, hi) -> {
            long i = lo;
            for (long end = Math.min(hi, body); i + W <= end; i += W) {
                FloatVector wv = load(sw, wo + i), gv = load(sg, go + i), mv = load(sm, mo + i), vv = load(sv, vo + i);
                if (before != 1) wv = DoubleScalar.apply(BinaryOp.MUL, wv, vBefore);
                mv = mv.mul(b1f).add(gv.mul(c1f));
                vv = vv.mul(b2f).add(gv.mul(gv).mul(c2f));
                FloatVector den = vv.sqrt();
                if (divisor != 1) den = DoubleScalar.apply(BinaryOp.DIV, den, vDivisor);
                den = DoubleScalar.apply(BinaryOp.ADD, den, vEps);
                FloatVector d = DoubleScalar.apply(BinaryOp.MUL, mv.div(den), vStep);
                wv = wv.mul(1f).add(d.mul(-1f));
                if (after != 0) wv = wv.mul(1f).add(wv.mul(afterF));
                wv.intoMemorySegment(sw, (wo + i) * 4, NATIVE);
                mv.intoMemorySegment(sm, (mo + i) * 4, NATIVE);
                vv.intoMemorySegment(sv, (vo + i) * 4, NATIVE);
            }
            for (; i < hi; i++) {
                float wf = sw.getAtIndex(Buf.F, wo + i), gf = sg.getAtIndex(Buf.F, go + i);
                float mf = sm.getAtIndex(Buf.F, mo + i), vf = sv.getAtIndex(Buf.F, vo + i);
                boolean tail = i >= body;
                if (before != 1) wf = (float) (wf * before);
                mf = tail ? (float) (b1 * mf + c1 * gf) : mf * b1f + gf * c1f;
                float sq = gf * gf;
                vf = tail ? (float) (b2 * vf + c2 * sq) : vf * b2f + sq * c2f;
                float den = (float) Math.sqrt(vf);
                if (divisor != 1) den = (float) (den / divisor);
                den = (float) (den + eps);
                float d = (float) ((mf / den) * stepSize);
                wf = wf - d;
                if (after != 0) wf = tail ? (float) (wf + after * wf) : wf + wf * afterF;
                sw.setAtIndex(Buf.F, wo + i, wf);
                sm.setAtIndex(Buf.F, mo + i, mf);
                sv.setAtIndex(Buf.F, vo + i, vf);
            }
        });
        return true;
    }

    private static FloatVector load(MemorySegment seg, long i) {
        return FloatVector.fromMemorySegment(F, seg, i * 4, NATIVE);
    }

    /** The composition reads each operand whole before writing it; a single pass cannot if two of them share memory. */
    private static boolean overlaps(Tensor a, Tensor b) {
        long a0 = a.segment().address() + a.offset() * 4, a1 = a0 + a.numel() * 4;
        long b0 = b.segment().address() + b.offset() * 4, b1 = b0 + b.numel() * 4;
        return a0 < b1 && b0 < a1;
    }
}
