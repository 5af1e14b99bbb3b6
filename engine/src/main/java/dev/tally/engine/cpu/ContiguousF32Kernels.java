package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Vector API fast paths for contiguous Buf.F tensors (the common case in training); every method returns false when its
 * operands do not qualify, and the caller falls back to the generic strided kernel. Math is fp32.
 *
 * <p>Every result depends on the inputs and the shape only, never on the JIT tier, the thread count or the call history:
 * lanes are combined by a fixed tree ({@link #sumLanes}, {@link #maxLanes}; {@code reduceLanes(ADD)} sums in an
 * unspecified order that differs between the interpreter and C2), and e^x is {@link #exp}, built from add/mul/fma only
 * (the Vector API's EXP, LOG and TANH are SVML in C2 but Math.exp/log/tanh per lane when interpreted: an ulp apart).
 * Vector {@code fma} is safe: it is one rounding on every path (Math.fma when interpreted, an FMA instruction in C2).
 */
final class ContiguousF32Kernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private ContiguousF32Kernels() {}

    static boolean f32(Tensor... ts) {
        for (Tensor t : ts) if (t.dtype() != DType.F32 || !t.isContiguous()) return false;
        return true;
    }

    private static FloatVector load(MemorySegment seg, long i) {
        return FloatVector.fromMemorySegment(S, seg, i * 4, NATIVE);
    }

    private static FloatVector unaryV(UnaryOp op, FloatVector x) {
        return switch (op) {
            case NEG -> x.neg();
            case ABS -> x.abs();
            case EXP -> exp(x);
            case SQRT -> x.sqrt();
            case RSQRT -> FloatVector.broadcast(S, 1f).div(x.sqrt());
            case SQUARE -> x.mul(x);
            case RECIPROCAL -> FloatVector.broadcast(S, 1f).div(x);
            case SIGMOID -> sigmoid(x);
            case SILU -> x.mul(sigmoid(x));
            default -> throw new IllegalStateException("no vector form for " + op);
        };
    }

    private static FloatVector sigmoid(FloatVector x) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        return one.div(one.add(exp(x.neg())));
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float ROUND = 12582912f; // 1.5·2^23: adding it rounds a float of magnitude < 2^22 to an integer
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f; // ln 2 = HI + LO, HI with few bits

    /**
     * e^x from IEEE add, mul, fma and integer ops only, so it gives the same bits interpreted and compiled: n = rint(x·log2 e),
     * r = x − n·ln 2 (Cody–Waite), e^r by Cephes' degree-6 expf polynomial (about 1 ulp), times 2^n applied as two
     * exact power-of-two factors (so results near the overflow and denormal limits round once). NaN stays NaN.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(-104f).min(89f); // e^-104 rounds to 0 and e^89 to +inf in fp32
        FloatVector k = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND));
        FloatVector n = k.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(S, 1.9875691500e-4f);
        p = p.fma(r, FloatVector.broadcast(S, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(S, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(S, 5.0000001201e-1f));
        FloatVector y = p.fma(r.mul(r), r).add(1f);
        // the integer n sits in k's low mantissa bits; 2^n = 2^h · 2^(n−h) with both factors normal for n in [-150, 129]
        IntVector ni = k.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND));
        IntVector h = ni.lanewise(VectorOperators.ASHR, 1);
        FloatVector s1 = h.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = ni.sub(h).add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return y.mul(s1).mul(s2).blend(x, x.test(VectorOperators.IS_NAN));
    }

    /**
     * {@link #exp(FloatVector)} on one value: the same operations in the same order (Math.fma is one rounding, as the
     * vector fma), so a loop's scalar tail and a strided fallback give the bits its vector lanes give.
     */
    static float exp(float x) {
        if (x != x) return x;
        float xc = Math.min(Math.max(x, -104f), 89f);
        float k = Math.fma(xc, LOG2E, ROUND);
        float n = k - ROUND;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float p = 1.9875691500e-4f;
        p = Math.fma(p, r, 1.3981999507e-3f);
        p = Math.fma(p, r, 8.3334519073e-3f);
        p = Math.fma(p, r, 4.1665795894e-2f);
        p = Math.fma(p, r, 1.6666665459e-1f);
        p = Math.fma(p, r, 5.0000001201e-1f);
        float y = Math.fma(p, r * r, r) + 1f;
        int ni = Float.floatToRawIntBits(k) - Float.floatToRawIntBits(ROUND);
        int h = ni >> 1;
        return y * Float.intBitsToFloat((h + 127) << 23) * Float.intBitsToFloat((ni - h + 127) << 23);
    }

    /** Lane i's partner i ^ w for w = L/2, L/4, …, 1: a fixed pairwise tree over the lanes. */
    @SuppressWarnings("unchecked")
    private static final VectorShuffle<Float>[] HALVES = new VectorShuffle[Integer.numberOfTrailingZeros(L)];
    static {
        for (int k = 0, w = L / 2; w >= 1; k++, w /= 2) {
            int width = w;
            HALVES[k] = VectorShuffle.fromOp(S, i -> i ^ width);
        }
    }

    /** The lanes' sum by a fixed pairwise tree (the same on every path, unlike {@code reduceLanes(ADD)}). */
    private static double sumLanes(FloatVector v) {
        for (VectorShuffle<Float> h : HALVES) v = v.add(v.rearrange(h));
        return v.lane(0);
    }

    /** The lanes' maximum (NaN if any lane is NaN), by the same fixed tree. */
    private static float maxLanes(FloatVector v) {
        for (VectorShuffle<Float> h : HALVES) v = v.max(v.rearrange(h));
        return v.lane(0);
    }

    private static float minLanes(FloatVector v) {
        for (VectorShuffle<Float> h : HALVES) v = v.min(v.rearrange(h));
        return v.lane(0);
    }

    /** The unary ops with a vector form (LOG, TANH: see the class comment). */
    static boolean vectorUnary(UnaryOp op) {
        return switch (op) {
            case NEG, ABS, EXP, SQRT, RSQRT, SQUARE, RECIPROCAL, SIGMOID, SILU -> true;
            default -> false;
        };
    }

    /** The unary ops whose backward has a vector form. */
    static boolean vectorUnaryBackward(UnaryOp op) {
        return op == UnaryOp.SILU || op == UnaryOp.SIGMOID || op == UnaryOp.EXP;
    }

    static boolean unary(UnaryOp op, Tensor x, Tensor out) {
        if (!f32(x, out) || !vectorUnary(op)) return false;
        MemorySegment a = x.segment(), o = out.segment();
        long xo = x.offset(), oo = out.offset(), n = out.numel();
        forElements(n, (lo, hi) -> unaryRange(op, a, xo, o, oo, lo, hi));
        return true;
    }

    /** Elements [lo, hi) of the fp32 unary: vectors from lo, the remainder (below L) one by one. */
    static void unaryRange(UnaryOp op, MemorySegment a, long xo, MemorySegment o, long oo, long lo, long hi) {
        long i = lo;
        for (; i + L <= hi; i += L) unaryV(op, load(a, xo + i)).intoMemorySegment(o, (oo + i) * 4, NATIVE);
        for (; i < hi; i++) o.setAtIndex(Buf.F, oo + i, (float) Elementwise.unary(op, a.getAtIndex(Buf.F, xo + i)));
    }

    static boolean unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        if (!f32(x, dy, dx) || !vectorUnaryBackward(op)) return false;
        MemorySegment a = x.segment(), g = dy.segment(), o = dx.segment();
        long xo = x.offset(), go = dy.offset(), oo = dx.offset(), n = dx.numel();
        forElements(n, (lo, hi) -> unaryBackwardRange(op, a, xo, g, go, o, oo, lo, hi));
        return true;
    }

    /** Elements [lo, hi) of the fp32 unary backward: vectors from lo, the remainder (below L) one by one. */
    static void unaryBackwardRange(UnaryOp op, MemorySegment a, long xo, MemorySegment g, long go, MemorySegment o, long oo, long lo, long hi) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        long i = lo;
        for (; i + L <= hi; i += L) {
            FloatVector v = load(a, xo + i), d = load(g, go + i);
            FloatVector r = switch (op) {
                case EXP -> d.mul(exp(v));
                case SIGMOID -> {
                    FloatVector s = sigmoid(v);
                    yield d.mul(s).mul(one.sub(s));
                }
                default -> { // SILU: s·(1 + x·(1 − s))
                    FloatVector s = sigmoid(v);
                    yield d.mul(s).mul(one.add(v.mul(one.sub(s))));
                }
            };
            r.intoMemorySegment(o, (oo + i) * 4, NATIVE);
        }
        for (; i < hi; i++) {
            o.setAtIndex(Buf.F, oo + i, (float) Elementwise.unaryGrad(op, a.getAtIndex(Buf.F, xo + i), g.getAtIndex(Buf.F, go + i)));
        }
    }

    /** b holds one value per row of out ([..., R, 1] against [..., R, C]: per-row scales and shifts). */
    private static boolean column(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        int r = out.rank();
        if (r < 1 || b.rank() != r || b.dim(-1) != 1) return false;
        for (int i = 0; i < r - 1; i++) if (b.dim(i) != out.dim(i)) return false;
        int c = out.dim(-1);
        long rows = b.numel();
        if (c == 0 || rows == 0) return true;
        MemorySegment sa = a.segment(), sb = b.segment(), so = out.segment();
        long ao = a.offset(), bo = b.offset(), oo = out.offset();
        CpuThreads.parallelFor(chunks(rows, c), CpuThreads.count(), chunk -> {
            for (long row = chunkStart(rows, c, chunk), end = chunkStart(rows, c, chunk + 1); row < end; row++) {
                float bv = sb.getAtIndex(Buf.F, bo + row);
                FloatVector vb = FloatVector.broadcast(S, bv);
                long base = row * c;
                int j = 0;
                for (; j + L <= c; j += L) apply(op, load(sa, ao + base + j), vb).intoMemorySegment(so, (oo + base + j) * 4, NATIVE);
                for (; j < c; j++) so.setAtIndex(Buf.F, oo + base + j, (float) Elementwise.binary(op, sa.getAtIndex(Buf.F, ao + base + j), bv));
            }
        });
        return true;
    }

    private static boolean vectorizable(BinaryOp op) {
        return switch (op) {
            case ADD, SUB, MUL, DIV, MAX, MIN -> true;
            default -> false;
        };
    }

    /** One call per op (a constant operator per branch, so the Vector API intrinsifies it). */
    private static FloatVector apply(BinaryOp op, FloatVector a, FloatVector b) {
        return switch (op) {
            case ADD -> a.add(b);
            case SUB -> a.sub(b);
            case MUL -> a.mul(b);
            case DIV -> a.div(b);
            case MAX -> a.max(b);
            case MIN -> a.min(b);
            default -> throw new IllegalStateException("no vector form for " + op);
        };
    }

    /** Same shapes, or b a contiguous row repeated over a's leading dims (bias, norm weights). */
    static boolean binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        if (!vectorizable(op) || !f32(a, b, out) || !a.shape().equals(out.shape())) return false;
        long n = out.numel(), bn = b.numel();
        boolean same = b.shape().equals(out.shape());
        boolean row = !same && out.rank() >= 1 && bn == out.dim(-1) && (b.rank() == 0 || b.dim(-1) == bn);
        if (!same && !row) return column(op, a, b, out);
        if (bn == 0 || n == 0) return true;
        MemorySegment sa = a.segment(), sb = b.segment(), so = out.segment();
        long ao = a.offset(), bo = b.offset(), oo = out.offset();
        if (same) {
            forElements(n, (lo, hi) -> binaryRange(op, sa, ao, sb, bo, so, oo, lo, hi));
            return true;
        }
        long period = bn, periods = n / bn;
        int cols = (int) Math.min(Integer.MAX_VALUE, period);
        CpuThreads.parallelFor(chunks(periods, cols), CpuThreads.count(), chunk -> {
            long end = chunkStart(periods, cols, chunk + 1) * period;
            for (long start = chunkStart(periods, cols, chunk) * period; start < end; start += period) {
                long i = 0;
                for (; i + L <= period; i += L) {
                    apply(op, load(sa, ao + start + i), load(sb, bo + i)).intoMemorySegment(so, (oo + start + i) * 4, NATIVE);
                }
                for (; i < period; i++) {
                    double r = Elementwise.binary(op, sa.getAtIndex(Buf.F, ao + start + i), sb.getAtIndex(Buf.F, bo + i));
                    so.setAtIndex(Buf.F, oo + start + i, (float) r);
                }
            }
        });
        return true;
    }

    /** Elements [lo, hi) of the same-shape fp32 binary op (ADD, SUB, MUL, DIV, MAX, MIN): vectors from lo, then the rest. */
    static void binaryRange(BinaryOp op, MemorySegment sa, long ao, MemorySegment sb, long bo, MemorySegment so, long oo, long lo, long hi) {
        long i = lo;
        for (; i + L <= hi; i += L) apply(op, load(sa, ao + i), load(sb, bo + i)).intoMemorySegment(so, (oo + i) * 4, NATIVE);
        for (; i < hi; i++) so.setAtIndex(Buf.F, oo + i, (float) Elementwise.binary(op, sa.getAtIndex(Buf.F, ao + i), sb.getAtIndex(Buf.F, bo + i)));
    }

    static boolean binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        if (!vectorizable(op) || !f32(a, out)) return false;
        MemorySegment sa = a.segment(), so = out.segment();
        long ao = a.offset(), oo = out.offset(), n = out.numel();
        float fs = (float) s;
        if ((double) fs != s && (op == BinaryOp.ADD || op == BinaryOp.SUB || op == BinaryOp.MUL || op == BinaryOp.DIV)) {
            return false; // a scalar not exact in fp32: keep the double arithmetic of the generic path
        }
        FloatVector vs = FloatVector.broadcast(S, fs);
        forElements(n, (lo, hi) -> {
            long i = lo;
            for (; i + L <= hi; i += L) apply(op, load(sa, ao + i), vs).intoMemorySegment(so, (oo + i) * 4, NATIVE);
            for (; i < hi; i++) so.setAtIndex(Buf.F, oo + i, (float) Elementwise.binary(op, sa.getAtIndex(Buf.F, ao + i), s));
        });
        return true;
    }

    static boolean axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) {
        if (!f32(x, y, out) || !x.shape().equals(out.shape()) || !y.shape().equals(out.shape()) || alpha == 0 || beta == 0) return false;
        MemorySegment sx = x.segment(), sy = y.segment(), so = out.segment();
        long xo = x.offset(), yo = y.offset(), oo = out.offset(), n = out.numel();
        FloatVector va = FloatVector.broadcast(S, (float) alpha), vb = FloatVector.broadcast(S, (float) beta);
        forElements(n, (lo, hi) -> {
            long i = lo;
            for (; i + L <= hi; i += L) {
                load(sx, xo + i).mul(va).add(load(sy, yo + i).mul(vb)).intoMemorySegment(so, (oo + i) * 4, NATIVE);
            }
            for (; i < hi; i++) {
                so.setAtIndex(Buf.F, oo + i, (float) (alpha * sx.getAtIndex(Buf.F, xo + i) + beta * sy.getAtIndex(Buf.F, yo + i)));
            }
        });
        return true;
    }

    /** Row-wise softmax / log-softmax over contiguous Buf.F rows (non-causal). */
    static boolean softmax(Tensor x, Tensor out, boolean log, boolean causal) {
        if (!f32(x, out) || x.rank() < 1 || (causal && (log || x.rank() < 2))) return false;
        int c = x.dim(-1);
        if (c == 0) return true;
        long rows = x.numel() / c;
        int rr = causal ? x.dim(-2) : 1;
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        CpuThreads.parallelFor(chunks(rows, c), CpuThreads.count(), chunk -> {
            long r0 = chunkStart(rows, c, chunk), r1 = chunkStart(rows, c, chunk + 1);
            for (long r = r0; r < r1; r++) {
                // causal: element j of row i is kept when j <= i + (C − R); the rest is 0
                int keep = causal ? (int) Math.max(0, Math.min(c, (r % rr) + (c - rr) + 1)) : c;
                long ob = oo + r * c;
                if (keep > 0) softmaxRow(sx, xo + r * c, so, ob, keep, log);
                for (int j = keep; j < c; j++) so.setAtIndex(Buf.F, ob + j, 0f);
            }
        });
        return true;
    }

    private static void softmaxRow(MemorySegment sx, long xb, MemorySegment so, long ob, int c, boolean log) {
        FloatVector vm = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        int j = 0;
        for (; j + L <= c; j += L) vm = vm.max(load(sx, xb + j));
        float m = maxLanes(vm);
        for (; j < c; j++) m = Math.max(m, sx.getAtIndex(Buf.F, xb + j));
        if (m == Float.NEGATIVE_INFINITY || (log && m == Float.POSITIVE_INFINITY)) m = 0f;
        FloatVector shift = FloatVector.broadcast(S, m);
        FloatVector vs = FloatVector.zero(S);
        double sum = 0;
        j = 0;
        for (; j + L <= c; j += L) {
            FloatVector e = exp(load(sx, xb + j).sub(shift));
            if (!log) e.intoMemorySegment(so, (ob + j) * 4, NATIVE); // out == x is fine: x[j] is read before
            vs = vs.add(e);
        }
        sum += sumLanes(vs);
        for (; j < c; j++) {
            float e = (float) Math.exp(sx.getAtIndex(Buf.F, xb + j) - m);
            if (!log) so.setAtIndex(Buf.F, ob + j, e);
            sum += e;
        }
        if (log) {
            FloatVector lse = FloatVector.broadcast(S, (float) (m + Math.log(sum)));
            j = 0;
            for (; j + L <= c; j += L) load(sx, xb + j).sub(lse).intoMemorySegment(so, (ob + j) * 4, NATIVE);
            float l = (float) (m + Math.log(sum));
            for (; j < c; j++) so.setAtIndex(Buf.F, ob + j, sx.getAtIndex(Buf.F, xb + j) - l);
        } else {
            FloatVector inv = FloatVector.broadcast(S, (float) (1.0 / sum));
            j = 0;
            for (; j + L <= c; j += L) load(so, ob + j).mul(inv).intoMemorySegment(so, (ob + j) * 4, NATIVE);
            float fi = (float) (1.0 / sum);
            for (; j < c; j++) so.setAtIndex(Buf.F, ob + j, so.getAtIndex(Buf.F, ob + j) * fi);
        }
    }

    /** RMSNorm forward over contiguous Buf.F rows with a contiguous Buf.F weight. */
    static boolean rmsNorm(Tensor x, Tensor w, double eps, Tensor out, Tensor rstd) {
        if (!f32(x, w, out) || (rstd != null && !f32(rstd))) return false;
        int d = x.dim(-1);
        if (d == 0) return false;
        long rows = x.numel() / d;
        MemorySegment sx = x.segment(), sw = w.segment(), so = out.segment();
        MemorySegment sr = rstd == null ? null : rstd.segment();
        long xo = x.offset(), wo = w.offset(), oo = out.offset(), ro = rstd == null ? 0 : rstd.offset();
        CpuThreads.parallelFor(chunks(rows, d), CpuThreads.count(), chunk -> {
            long r0 = chunkStart(rows, d, chunk), r1 = chunkStart(rows, d, chunk + 1);
            for (long r = r0; r < r1; r++) {
                float rs = rmsNormRow(sx, xo + r * d, sw, wo, so, oo + r * d, d, eps);
                if (sr != null) sr.setAtIndex(Buf.F, ro + r, rs);
            }
        });
        return true;
    }

    /**
     * One row of {@link #rmsNorm}: out[ob..] = x[xb..] · rstd · w[wo..] over d floats, rstd = 1 / √(mean(x²) + eps) in
     * fp32, returned. Also the bf16 kernel's arithmetic, on widened rows ({@link ContiguousBf16Kernels#rmsNorm}).
     */
    static float rmsNormRow(MemorySegment sx, long xb, MemorySegment sw, long wo, MemorySegment so, long ob, int d, double eps) {
        FloatVector acc = FloatVector.zero(S);
        int j = 0;
        for (; j + L <= d; j += L) {
            FloatVector v = load(sx, xb + j);
            acc = v.fma(v, acc);
        }
        double ss = sumLanes(acc);
        for (; j < d; j++) {
            double v = sx.getAtIndex(Buf.F, xb + j);
            ss += v * v;
        }
        float rs = (float) (1.0 / Math.sqrt(ss / d + eps));
        FloatVector vr = FloatVector.broadcast(S, rs);
        j = 0;
        for (; j + L <= d; j += L) load(sx, xb + j).mul(vr).mul(load(sw, wo + j)).intoMemorySegment(so, (ob + j) * 4, NATIVE);
        for (; j < d; j++) so.setAtIndex(Buf.F, ob + j, sx.getAtIndex(Buf.F, xb + j) * rs * sw.getAtIndex(Buf.F, wo + j));
        return rs;
    }

    /** Contiguous F32: vector stores of (float) value, split over the threads (zeroing gradients was one core's job). */
    static boolean fill(Tensor out, double value) {
        if (!f32(out)) return false;
        MemorySegment so = out.segment();
        long oo = out.offset(), n = out.numel();
        float f = (float) value;
        FloatVector vf = FloatVector.broadcast(S, f);
        forElements(n, (lo, hi) -> {
            long i = lo;
            for (; i + L <= hi; i += L) vf.intoMemorySegment(so, (oo + i) * 4, NATIVE);
            for (; i < hi; i++) so.setAtIndex(Buf.F, oo + i, f);
        });
        return true;
    }

    /** Same-dtype copy between contiguous tensors of one shape: a plain memory copy. */
    static boolean copy(Tensor src, Tensor dst) {
        if (src.dtype() != dst.dtype() || !src.shape().equals(dst.shape()) || !src.isContiguous() || !dst.isContiguous()) return false;
        int es = src.dtype().byteSize();
        MemorySegment.copy(src.segment(), src.offset() * es, dst.segment(), dst.offset() * es, src.numel() * es);
        return true;
    }

    /** SUM / MEAN along a dimension other than the last: whole contiguous rows are added with vectors. */
    static boolean reduceLeading(dev.tally.engine.ReduceOp op, Tensor x, int dim, Tensor out) {
        if ((op != dev.tally.engine.ReduceOp.SUM && op != dev.tally.engine.ReduceOp.MEAN) || !f32(x, out) || dim == x.rank() - 1) return false;
        int len = x.dim(dim);
        long inner = 1;
        for (int i = dim + 1; i < x.rank(); i++) inner *= x.dim(i);
        if (inner > (1 << 24) || len == 0) return false;
        long outer = x.numel() / Math.max(1, len * inner);
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        float scale = op == dev.tally.engine.ReduceOp.MEAN ? 1f / len : 1f;
        int in = (int) inner;
        for (long o = 0; o < outer; o++) {
            long ob = oo + o * inner, xb = xo + o * len * inner;
            int j = 0;
            for (; j + L <= in; j += L) {
                FloatVector acc = FloatVector.zero(S);
                for (int k = 0; k < len; k++) acc = acc.add(load(sx, xb + (long) k * inner + j));
                acc.mul(scale).intoMemorySegment(so, (ob + j) * 4, NATIVE);
            }
            for (; j < in; j++) {
                float acc = 0f;
                for (int k = 0; k < len; k++) acc += sx.getAtIndex(Buf.F, xb + (long) k * inner + j);
                so.setAtIndex(Buf.F, ob + j, acc * scale);
            }
        }
        return true;
    }

    /** RMSNorm backward over contiguous Buf.F rows; dweight (if any) accumulated in double per column. */
    static boolean rmsNormBackward(Tensor x, Tensor w, Tensor rstd, Tensor dy, Tensor dx, Tensor dw) {
        if (!f32(x, w, rstd, dy, dx) || (dw != null && !f32(dw))) return false;
        int d = x.dim(-1);
        if (d == 0) return false;
        long rows = x.numel() / d;
        MemorySegment sx = x.segment(), sw = w.segment(), sr = rstd.segment(), sg = dy.segment(), so = dx.segment();
        long xo = x.offset(), wo = w.offset(), ro = rstd.offset(), go = dy.offset(), oo = dx.offset();
        float[] dwAcc = dw == null ? null : new float[d];
        for (long r = 0; r < rows; r++) {
            rmsNormBackwardRow(sx, xo + r * d, sw, wo, sr.getAtIndex(Buf.F, ro + r), sg, go + r * d, so, oo + r * d, d, dwAcc);
        }
        if (dw != null) {
            MemorySegment sd = dw.segment();
            for (int j = 0; j < d; j++) sd.setAtIndex(Buf.F, dw.offset() + j, dwAcc[j]);
        }
        return true;
    }

    /**
     * One row of {@link #rmsNormBackward}: dx[ob..] = rstd · (g − x̂ · mean(g · x̂)) with x̂ = x · rstd, g = dy · w, and
     * dwAcc[j] += dy[j] · x̂[j] (rows in order; null: no weight gradient). Also the bf16 kernel's arithmetic.
     */
    static void rmsNormBackwardRow(MemorySegment sx, long xb, MemorySegment sw, long wo, float rs, MemorySegment sg, long gb,
                                   MemorySegment so, long ob, int d, float[] dwAcc) {
        FloatVector vr = FloatVector.broadcast(S, rs);
        // dot = Σ dy·w·xhat with xhat = x·rstd
        FloatVector acc = FloatVector.zero(S);
        int j = 0;
        for (; j + L <= d; j += L) {
            FloatVector xh = load(sx, xb + j).mul(vr), g = load(sg, gb + j);
            acc = g.mul(load(sw, wo + j)).fma(xh, acc);
            if (dwAcc != null) g.fma(xh, FloatVector.fromArray(S, dwAcc, j)).intoArray(dwAcc, j);
        }
        double dot = sumLanes(acc);
        for (; j < d; j++) {
            float xh = sx.getAtIndex(Buf.F, xb + j) * rs, g = sg.getAtIndex(Buf.F, gb + j);
            dot += (double) g * sw.getAtIndex(Buf.F, wo + j) * xh;
            if (dwAcc != null) dwAcc[j] += g * xh;
        }
        float mean = (float) (dot / d);
        FloatVector vm = FloatVector.broadcast(S, mean);
        j = 0;
        for (; j + L <= d; j += L) {
            FloatVector xh = load(sx, xb + j).mul(vr);
            FloatVector g = load(sg, gb + j).mul(load(sw, wo + j));
            g.sub(xh.mul(vm)).mul(vr).intoMemorySegment(so, (ob + j) * 4, NATIVE);
        }
        for (; j < d; j++) {
            float xh = sx.getAtIndex(Buf.F, xb + j) * rs;
            float g = sg.getAtIndex(Buf.F, gb + j) * sw.getAtIndex(Buf.F, wo + j);
            so.setAtIndex(Buf.F, ob + j, rs * (g - xh * mean));
        }
    }

    /**
     * Reductions of contiguous Buf.F rows (the last dim; reduceAll is one row): max-like ops with vectors (exact in any
     * order), sums in double with four independent accumulators, log-sum-exp as max then Σ exp(x − max) in double.
     */
    static boolean reduceRows(dev.tally.engine.ReduceOp op, Tensor x, Tensor out, boolean all) {
        if (!f32(x, out) || x.rank() == 0) return false;
        long len = all ? x.numel() : x.dim(-1);
        if (len == 0) return false;
        long rows = x.numel() / len;
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        int cols = (int) Math.min(len, Integer.MAX_VALUE);
        CpuThreads.parallelFor(rows * len >= (1 << 17) && !all ? chunks(rows, cols) : 1, CpuThreads.count(), chunk -> {
            long r0 = all ? 0 : chunkStart(rows, cols, chunk), r1 = all ? 1 : chunkStart(rows, cols, chunk + 1);
            for (long r = r0; r < r1; r++) so.setAtIndex(Buf.F, oo + r, (float) reduceRow(op, sx, xo + r * len, len));
        });
        return true;
    }

    private static double reduceRow(dev.tally.engine.ReduceOp op, MemorySegment sx, long base, long len) {
        return switch (op) {
            case SUM -> sum(sx, base, len, false);
            case MEAN -> sum(sx, base, len, false) / len;
            case SUM_SQUARES -> sum(sx, base, len, true);
            case NORM2 -> Math.sqrt(sum(sx, base, len, true));
            case MAX, MIN, MAX_ABS -> extreme(op, sx, base, len);
            case LOGSUMEXP -> {
                double m = extreme(dev.tally.engine.ReduceOp.MAX, sx, base, len);
                if (Double.isNaN(m) || Double.isInfinite(m)) yield m;
                double s0 = 0, s1 = 0;
                long i = 0;
                for (; i + 2 <= len; i += 2) {
                    s0 += Math.exp(sx.getAtIndex(Buf.F, base + i) - m);
                    s1 += Math.exp(sx.getAtIndex(Buf.F, base + i + 1) - m);
                }
                for (; i < len; i++) s0 += Math.exp(sx.getAtIndex(Buf.F, base + i) - m);
                yield m + Math.log(s0 + s1);
            }
        };
    }

    private static double sum(MemorySegment sx, long base, long len, boolean squares) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        long i = 0;
        for (; i + 4 <= len; i += 4) {
            double a = sx.getAtIndex(Buf.F, base + i), b = sx.getAtIndex(Buf.F, base + i + 1);
            double c = sx.getAtIndex(Buf.F, base + i + 2), d = sx.getAtIndex(Buf.F, base + i + 3);
            if (squares) {
                s0 += a * a; s1 += b * b; s2 += c * c; s3 += d * d;
            } else {
                s0 += a; s1 += b; s2 += c; s3 += d;
            }
        }
        for (; i < len; i++) {
            double a = sx.getAtIndex(Buf.F, base + i);
            s0 += squares ? a * a : a;
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** MAX / MIN / MAX_ABS; NaN anywhere gives NaN. */
    private static double extreme(dev.tally.engine.ReduceOp op, MemorySegment sx, long base, long len) {
        boolean min = op == dev.tally.engine.ReduceOp.MIN, abs = op == dev.tally.engine.ReduceOp.MAX_ABS;
        FloatVector acc = FloatVector.broadcast(S, min ? Float.POSITIVE_INFINITY : abs ? 0f : Float.NEGATIVE_INFINITY);
        FloatVector nan = FloatVector.zero(S);
        long i = 0;
        for (; i + L <= len; i += L) {
            FloatVector v = load(sx, base + i);
            nan = nan.add(v.sub(v)); // NaN (or inf − inf) lanes stay NaN
            acc = min ? acc.min(v) : abs ? acc.max(v.abs()) : acc.max(v);
        }
        float r = min ? minLanes(acc) : maxLanes(acc);
        boolean sawNaN = nan.test(VectorOperators.IS_NAN).anyTrue() && hasNaN(sx, base, i);
        for (; i < len; i++) {
            float v = sx.getAtIndex(Buf.F, base + i);
            if (v != v) sawNaN = true;
            r = min ? Math.min(r, v) : abs ? Math.max(r, Math.abs(v)) : Math.max(r, v);
        }
        return sawNaN ? Double.NaN : r;
    }

    private static boolean hasNaN(MemorySegment sx, long base, long len) {
        for (long i = 0; i < len; i++) {
            float v = sx.getAtIndex(Buf.F, base + i);
            if (v != v) return true;
        }
        return false;
    }

    /** dx = y ∘ (dy − Σ dy ∘ y) over contiguous F32 rows (the dot in double). */
    static boolean softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        if (!f32(y, dy, dx) || y.rank() < 1) return false;
        int c = y.dim(-1);
        if (c == 0) return true;
        long rows = y.numel() / c;
        MemorySegment sy = y.segment(), sg = dy.segment(), so = dx.segment();
        long yo = y.offset(), go = dy.offset(), oo = dx.offset();
        CpuThreads.parallelFor(chunks(rows, c), CpuThreads.count(), chunk -> {
            long r0 = chunkStart(rows, c, chunk), r1 = chunkStart(rows, c, chunk + 1);
            for (long r = r0; r < r1; r++) {
                long yb = yo + r * c, gb = go + r * c, ob = oo + r * c;
                double d0 = 0, d1 = 0;
                int j = 0;
                for (; j + 2 <= c; j += 2) {
                    d0 += (double) sy.getAtIndex(Buf.F, yb + j) * sg.getAtIndex(Buf.F, gb + j);
                    d1 += (double) sy.getAtIndex(Buf.F, yb + j + 1) * sg.getAtIndex(Buf.F, gb + j + 1);
                }
                for (; j < c; j++) d0 += (double) sy.getAtIndex(Buf.F, yb + j) * sg.getAtIndex(Buf.F, gb + j);
                FloatVector dot = FloatVector.broadcast(S, (float) (d0 + d1));
                j = 0;
                for (; j + L <= c; j += L) {
                    load(sy, yb + j).mul(load(sg, gb + j).sub(dot)).intoMemorySegment(so, (ob + j) * 4, NATIVE);
                }
                float fd = (float) (d0 + d1);
                for (; j < c; j++) so.setAtIndex(Buf.F, ob + j, sy.getAtIndex(Buf.F, yb + j) * (sg.getAtIndex(Buf.F, gb + j) - fd));
            }
        });
        return true;
    }

    /** A range [lo, hi) of flattened elements. */
    @FunctionalInterface
    interface ElementRange {
        void run(long lo, long hi);
    }

    /** Elements per task of {@link #forElements}: large enough that a task costs far more than handing it out. */
    static final long ELEMENT_CHUNK = 1 << 16;

    /**
     * Runs {@code body} over [0, n) in tasks on the CPU threads. Every boundary but n itself is a multiple of
     * {@link #ELEMENT_CHUNK} (a multiple of every vector length), so each task's vector loop covers exactly the elements a
     * single call over [0, n) would, and only the last task has a scalar tail: the bits do not depend on the thread count.
     */
    static void forElements(long n, ElementRange body) {
        long tasks = (n + ELEMENT_CHUNK - 1) / ELEMENT_CHUNK;
        if (tasks <= 1) {
            body.run(0, n);
            return;
        }
        CpuThreads.parallelFor((int) tasks, CpuThreads.count(), t -> body.run(t * ELEMENT_CHUNK, Math.min(n, (t + 1) * ELEMENT_CHUNK)));
    }

    /** Row chunks of a row kernel: enough work per chunk to be worth a thread hand-off (about 64K elements), whole rows. */
    static int chunks(long rows, int cols) {
        long total = rows * cols;
        return (int) Math.max(1, Math.min(rows, total / (1 << 16)));
    }

    static long chunkStart(long rows, int cols, int chunk) {
        return rows * chunk / chunks(rows, cols);
    }
}
