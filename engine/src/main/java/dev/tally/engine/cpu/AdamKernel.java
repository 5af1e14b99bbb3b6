package dev.tally.engine.cpu;

import dev.tally.engine.AdamStep;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorOperators;
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
    /** W bf16 values, and the ints they widen to (one {@link #F} vector). */
    private static final VectorSpecies<Short> HALF_W = VectorSpecies.of(short.class, VectorShape.forBitSize(W * 16));
    private static final VectorSpecies<Integer> INTS_W = VectorSpecies.of(int.class, F.vectorShape());

    private AdamKernel() {}

    /** Returns false (the caller composes) unless every operand is contiguous F32 of one shape and the kernel applies. */
    static boolean step(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v) {
        if (bf16Weights(w, g, m, v)) return stepBf16Weights(s, w, g, m, v);
        if (!ContiguousF32Kernels.f32(w, g, m, v) || !DoubleScalar.available() || L % W != 0 || !onePass(s, w, g, m, v)) return false;
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

    /**
     * What both one-pass kernels need besides their dtypes: operands of one shape that share no memory (the composition
     * reads each whole before writing it), and no zero moment coefficient (the composition's axpby then drops the term
     * and leaves its vector kernel, which the kernels do not mirror).
     */
    private static boolean onePass(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v) {
        if (!g.shape().equals(w.shape()) || !m.shape().equals(w.shape()) || !v.shape().equals(w.shape())) return false;
        if (s.beta1() == 0 || 1 - s.beta1() == 0 || s.beta2() == 0 || 1 - s.beta2() == 0) return false;
        return !(overlaps(w, g) || overlaps(w, m) || overlaps(w, v) || overlaps(g, m) || overlaps(g, v) || overlaps(m, v));
    }

    /** bf16 training's usual operands: weight and gradient bf16, both moments fp32, all contiguous. */
    private static boolean bf16Weights(Tensor w, Tensor g, Tensor m, Tensor v) {
        return w.dtype() == DType.BF16 && g.dtype() == DType.BF16 && w.isContiguous() && g.isContiguous()
                && ContiguousF32Kernels.f32(m, v);
    }

    /**
     * The step for bf16 weight and gradient with fp32 moments, in one pass (the composition made ten, five of
     * them on the element-by-element path every op takes for a bf16 operand: 0.84 s of a 3 s llama_20m bf16 step). It
     * mirrors which path each op of the composition takes: the ops with a bf16 operand (weight decay, the first moment,
     * the square of the gradient, the update and the decoupled decay) run in double and round once to their output
     * (bf16 through fp32, as {@link Buf#set} does; an axpby as {@code 0 + α·x + β·y}); the fp32 ones (second moment,
     * square root, denominator, quotient, step size) as the fp32 kernel above, body and tail alike. Elements in whole
     * vectors below the body limit take the same arithmetic W lanes at a time (each lane the scalar operations' bits).
     */
    private static boolean stepBf16Weights(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v) {
        if (!onePass(s, w, g, m, v)) return false;
        long n = w.numel(), body = n - n % L;
        MemorySegment sw = w.segment(), sg = g.segment(), sm = m.segment(), sv = v.segment();
        long wo = w.offset(), go = g.offset(), mo = m.offset(), vo = v.offset();
        double b1 = s.beta1(), c1 = 1 - s.beta1(), b2 = s.beta2(), c2 = 1 - s.beta2();
        double eps = s.eps(), divisor = s.denominatorDivisor(), stepSize = s.stepSize(), before = s.decayBefore(), after = s.decayAfter();
        float b2f = (float) b2, c2f = (float) c2;
        boolean vectors = DoubleScalar.available() && L % W == 0;
        // the fp32 second moment takes the fp32 kernel's vector form below `body` and its tail form above: two loops, so
        // that no element branches on it (a branch the first compiled code never saw sent it back to the interpreter)
        ContiguousF32Kernels.forElements(n, (lo, hi) -> {
            long mid = Math.max(lo, Math.min(hi, body));
            long i0 = lo;
            if (vectors) {
                i0 = lo + (mid - lo) / W * W;
                bf16Vectors(s, sw, sg, sm, sv, wo, go, mo, vo, lo, i0);
            }
            for (long i = i0; i < mid; i++) {
                float vf = sv.getAtIndex(Buf.F, vo + i), sq = square(sg, go + i);
                bf16Element(sw, sg, sm, sv, wo + i, go + i, mo + i, vo + i, vf * b2f + sq * c2f, b1, c1, eps, divisor, stepSize, before, after);
            }
            for (long i = Math.max(i0, mid); i < hi; i++) {
                float vf = sv.getAtIndex(Buf.F, vo + i), sq = square(sg, go + i);
                bf16Element(sw, sg, sm, sv, wo + i, go + i, mo + i, vo + i, (float) (b2 * vf + c2 * sq), b1, c1, eps, divisor, stepSize, before, after);
            }
        });
        return true;
    }

    /**
     * Elements [from, to) (whole vectors of the body) of {@link #stepBf16Weights}, W lanes at a time: bf16Element's
     * arithmetic with each double operation the same IEEE operation on every lane, each {@code (float)} cast a D2F
     * conversion and each bf16 rounding {@link DType#f32ToBf16}'s integer steps. Written out in full, without helpers
     * that take or return vectors: C2 does not inline a helper it compiled on its own first, and then boxes every vector.
     */
    private static void bf16Vectors(AdamStep s, MemorySegment sw, MemorySegment sg, MemorySegment sm, MemorySegment sv,
                                    long wo, long go, long mo, long vo, long from, long to) {
        VectorSpecies<Double> dv = DoubleScalar.D;
        double before = s.decayBefore(), after = s.decayAfter(), divisor = s.denominatorDivisor();
        float b2f = (float) s.beta2(), c2f = (float) (1 - s.beta2());
        DoubleVector zero = DoubleVector.zero(dv), vb1 = DoubleVector.broadcast(dv, s.beta1());
        DoubleVector vc1 = DoubleVector.broadcast(dv, 1 - s.beta1()), vBefore = DoubleVector.broadcast(dv, before);
        DoubleVector vAfter = DoubleVector.broadcast(dv, after), vDivisor = DoubleVector.broadcast(dv, divisor);
        DoubleVector vEps = DoubleVector.broadcast(dv, s.eps()), vStep = DoubleVector.broadcast(dv, s.stepSize());
        DoubleVector minusOne = DoubleVector.broadcast(dv, -1.0);
        for (long i = from; i < to; i += W) {
            FloatVector gf = ((IntVector) ShortVector.fromMemorySegment(HALF_W, sg, (go + i) * 2, NATIVE)
                    .convertShape(VectorOperators.S2I, INTS_W, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector wf = ((IntVector) ShortVector.fromMemorySegment(HALF_W, sw, (wo + i) * 2, NATIVE)
                    .convertShape(VectorOperators.S2I, INTS_W, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            DoubleVector gd = (DoubleVector) gf.convertShape(VectorOperators.F2D, dv, 0);
            if (before != 1) { // bf16(w · before)
                IntVector b = ((FloatVector) wf.convertShape(VectorOperators.F2D, dv, 0).mul(vBefore).convertShape(VectorOperators.D2F, F, 0)).reinterpretAsInts();
                wf = b.add(b.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF).and(0xFFFF0000)
                        .blend(b.or(0x00400000).and(0xFFFF0000), b.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000)).reinterpretAsFloats();
            }
            DoubleVector mAcc = zero.add(vb1.mul((DoubleVector) load(sm, mo + i).convertShape(VectorOperators.F2D, dv, 0))).add(vc1.mul(gd));
            FloatVector mf = (FloatVector) mAcc.convertShape(VectorOperators.D2F, F, 0);
            FloatVector vf = load(sv, vo + i).mul(b2f).add(gf.mul(gf).mul(c2f)); // g² is exact in fp32 for a bf16 g
            FloatVector den = (FloatVector) ((DoubleVector) vf.convertShape(VectorOperators.F2D, dv, 0)).sqrt().convertShape(VectorOperators.D2F, F, 0);
            if (divisor != 1) den = (FloatVector) den.convertShape(VectorOperators.F2D, dv, 0).div(vDivisor).convertShape(VectorOperators.D2F, F, 0);
            den = (FloatVector) den.convertShape(VectorOperators.F2D, dv, 0).add(vEps).convertShape(VectorOperators.D2F, F, 0);
            // a float quotient, as mf / den is in Java, then the double step size
            DoubleVector d = (DoubleVector) ((FloatVector) mf.div(den).convertShape(VectorOperators.F2D, dv, 0).mul(vStep)
                    .convertShape(VectorOperators.D2F, F, 0)).convertShape(VectorOperators.F2D, dv, 0);
            DoubleVector wd = (DoubleVector) wf.convertShape(VectorOperators.F2D, dv, 0);
            IntVector b = ((FloatVector) zero.add(wd).add(minusOne.mul(d)).convertShape(VectorOperators.D2F, F, 0)).reinterpretAsInts();
            IntVector wBits = b.add(b.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF).and(0xFFFF0000)
                    .blend(b.or(0x00400000).and(0xFFFF0000), b.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000));
            if (after != 0) { // bf16(0 + w + after · w)
                wd = (DoubleVector) wBits.reinterpretAsFloats().convertShape(VectorOperators.F2D, dv, 0);
                b = ((FloatVector) zero.add(wd).add(vAfter.mul(wd)).convertShape(VectorOperators.D2F, F, 0)).reinterpretAsInts();
                wBits = b.add(b.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF).and(0xFFFF0000)
                        .blend(b.or(0x00400000).and(0xFFFF0000), b.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000));
            }
            ((ShortVector) wBits.lanewise(VectorOperators.LSHR, 16).convertShape(VectorOperators.I2S, HALF_W, 0))
                    .intoMemorySegment(sw, (wo + i) * 2, NATIVE);
            mf.intoMemorySegment(sm, (mo + i) * 4, NATIVE);
            vf.intoMemorySegment(sv, (vo + i) * 4, NATIVE);
        }
    }

    /** The gradient's square as the composition's unary SQUARE on a bf16 input writes it to fp32 (exact). */
    private static float square(MemorySegment sg, long at) {
        double gd = DType.bf16ToF32(sg.getAtIndex(Buf.S, at));
        return (float) (gd * gd);
    }

    /** One element of the bf16-weight step given its new second moment {@code vf}. */
    private static void bf16Element(MemorySegment sw, MemorySegment sg, MemorySegment sm, MemorySegment sv, long wi, long gi, long mi,
                                    long vi, float vf, double b1, double c1, double eps, double divisor, double stepSize,
                                    double before, double after) {
        double wd = DType.bf16ToF32(sw.getAtIndex(Buf.S, wi)), gd = DType.bf16ToF32(sg.getAtIndex(Buf.S, gi));
        if (before != 1) wd = bf16(wd * before);
        double acc = 0;
        acc += b1 * sm.getAtIndex(Buf.F, mi);
        acc += c1 * gd;
        float mf = (float) acc;
        float den = (float) Math.sqrt(vf);
        if (divisor != 1) den = (float) (den / divisor);
        den = (float) (den + eps);
        float d = (float) ((mf / den) * stepSize);
        acc = 0;
        acc += wd;
        acc += -1.0 * d;
        wd = bf16(acc);
        if (after != 0) {
            acc = 0;
            acc += wd;
            acc += after * wd;
            wd = bf16(acc);
        }
        sw.setAtIndex(Buf.S, wi, DType.f32ToBf16((float) wd));
        sm.setAtIndex(Buf.F, mi, mf);
        sv.setAtIndex(Buf.F, vi, vf);
    }

    /** x rounded as a bf16 output stores it (to fp32, then to bf16), as a double again. */
    private static double bf16(double x) {
        return DType.bf16ToF32(DType.f32ToBf16((float) x));
    }

    private static FloatVector load(MemorySegment seg, long i) {
        return FloatVector.fromMemorySegment(F, seg, i * 4, NATIVE);
    }

    /** The composition reads each operand whole before writing it; a single pass cannot if two of them share memory. */
    private static boolean overlaps(Tensor a, Tensor b) {
        long as = a.dtype().byteSize(), bs = b.dtype().byteSize();
        long a0 = a.segment().address() + a.offset() * as, a1 = a0 + a.numel() * as;
        long b0 = b.segment().address() + b.offset() * bs, b1 = b0 + b.numel() * bs;
        return a0 < b1 && b0 < a1;
    }
}
