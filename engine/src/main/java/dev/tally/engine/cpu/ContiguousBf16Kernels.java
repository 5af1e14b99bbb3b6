package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.lang.foreign.MemorySegment;

/**
 * Vector paths for contiguous bf16 operands.
 *
 * <p>Unary ops and their backward with a vector form (SILU, SIGMOID, EXP, …) widen a chunk to fp32, run the fp32 kernel
 * over it and round the result to bf16: exactly bf16(f32 kernel(widened x)), the fp32 kernel's arithmetic (its own e^x)
 * in place of the element loop's double (Math.exp), as contiguous fp32 tensors already have it. Chunks are whole vectors,
 * so only the tensor's last n mod L elements take the kernel's scalar tail, as they would over the whole widened tensor.
 *
 * <p>ADD, SUB, MUL and DIV (the residual adds, SwiGLU's products and their gradients in
 * bf16 training), same shapes or b a row repeated over a's leading dims. They give the generic kernel's bits: it
 * computes in double and rounds to fp32, then to bf16; for one +, −, × or ÷ of two floats, double's 53 bits are enough
 * that rounding to double first changes nothing (53 ≥ 2·24 + 2), so the fp32 operation on the widened values gives the
 * same float, which is then rounded to bf16 as {@link DType#f32ToBf16} does. They take the same route as the unary ops:
 * the fp32 kernel over widened chunks, rounded once.
 *
 * <p>RMSNorm and its backward (x, dy, out and dx in bf16; the weight and its gradient in bf16 or fp32; rstd fp32) are
 * the fp32 kernel's row arithmetic ({@link ContiguousF32Kernels#rmsNormRow}, {@link
 * ContiguousF32Kernels#rmsNormBackwardRow}) on widened rows, each output rounded once: the weight gradient accumulates in
 * fp32 as the fp32 kernel's does and is rounded at the end.
 */
final class ContiguousBf16Kernels {
    /** Elements widened at a time: a multiple of L and a divisor of the element split's chunk. */
    private static final int STAGE = 4096;
    private static final ThreadLocal<MemorySegment[]> STAGING = ThreadLocal.withInitial(
            () -> new MemorySegment[] {MemorySegment.ofArray(new float[STAGE]), MemorySegment.ofArray(new float[STAGE])});

    static {
        if (STAGE % Bf16Lanes.L != 0 || ContiguousF32Kernels.ELEMENT_CHUNK % STAGE != 0) throw new AssertionError("staging chunk " + STAGE);
    }

    private ContiguousBf16Kernels() {}

    /** Per-thread fp32 rows for the bf16 row kernels (RMSNorm here, RoPE in {@link NnKernels}): grown to the widest row seen. */
    private static final ThreadLocal<MemorySegment[]> ROWS = ThreadLocal.withInitial(() -> new MemorySegment[3]);

    /**
     * The calling thread's fp32 staging row {@code which} (0–2), at least {@code floats} long. The row kernels that use
     * them run one at a time on a thread (a pool thread runs one task at a time), so they share the rows.
     */
    static MemorySegment stagingRow(int which, int floats) {
        MemorySegment[] rows = ROWS.get();
        if (rows[which] == null || rows[which].byteSize() < 4L * floats) rows[which] = MemorySegment.ofArray(new float[floats]);
        return rows[which];
    }

    private static boolean bf16(Tensor... ts) {
        for (Tensor t : ts) if (t.dtype() != DType.BF16 || !t.isContiguous()) return false;
        return true;
    }

    static boolean unary(UnaryOp op, Tensor x, Tensor out) {
        if (!ContiguousF32Kernels.vectorUnary(op) || !bf16(x, out) || !Loop.rowsIndependent(out, x)) return false;
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        ContiguousF32Kernels.forElements(out.numel(), (lo, hi) -> {
            MemorySegment t = STAGING.get()[0];
            for (long c = lo; c < hi; c += STAGE) {
                int len = (int) Math.min(STAGE, hi - c);
                Bf16Lanes.widenRow(sx, xo + c, t, 0, len);
                ContiguousF32Kernels.unaryRange(op, t, 0, t, 0, 0, len);
                Bf16Lanes.narrowRow(t, 0, so, oo + c, len);
            }
        });
        return true;
    }

    static boolean unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        if (!ContiguousF32Kernels.vectorUnaryBackward(op) || !bf16(x, dy, dx) || !Loop.rowsIndependent(dx, x, dy)) return false;
        MemorySegment sx = x.segment(), sg = dy.segment(), so = dx.segment();
        long xo = x.offset(), go = dy.offset(), oo = dx.offset();
        ContiguousF32Kernels.forElements(dx.numel(), (lo, hi) -> {
            MemorySegment[] t = STAGING.get();
            for (long c = lo; c < hi; c += STAGE) {
                int len = (int) Math.min(STAGE, hi - c);
                Bf16Lanes.widenRow(sx, xo + c, t[0], 0, len);
                Bf16Lanes.widenRow(sg, go + c, t[1], 0, len);
                ContiguousF32Kernels.unaryBackwardRange(op, t[0], 0, t[1], 0, t[0], 0, 0, len);
                Bf16Lanes.narrowRow(t[0], 0, so, oo + c, len);
            }
        });
        return true;
    }

    static boolean binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        switch (op) {
            case ADD, SUB, MUL, DIV -> { }
            default -> { return false; }
        }
        // b may also be contiguous F32 (a bf16 buffer plus an fp32 one, as a loss's fp32 dC added into a bf16 gradient):
        // it is read as it is instead of widened — the same fp32 operation on the same values
        boolean f32b = b.dtype() == DType.F32 && b.isContiguous();
        if (!bf16(a, out) || !(f32b || bf16(b)) || !a.shape().equals(out.shape())) return false;
        long n = out.numel(), bn = b.numel();
        boolean same = b.shape().equals(out.shape());
        boolean row = !same && out.rank() >= 1 && bn == out.dim(-1) && (b.rank() == 0 || b.dim(-1) == bn);
        if (!(same || row) || !Loop.rowsIndependent(out, a, b)) return false;
        if (n == 0 || bn == 0) return true;
        MemorySegment sa = a.segment(), sb = b.segment(), so = out.segment();
        long ao = a.offset(), bo = b.offset(), oo = out.offset();
        if (same) {
            ContiguousF32Kernels.forElements(n, (lo, hi) -> staged(op, sa, ao + lo, sb, bo + lo, f32b, so, oo + lo, hi - lo));
            return true;
        }
        long periods = n / bn;
        int tasks = (int) Math.max(1, Math.min(periods, n / (1 << 16)));
        CpuThreads.parallelFor(tasks, CpuThreads.count(), t -> {
            for (long p = periods * t / tasks, end = periods * (t + 1) / tasks; p < end; p++) {
                staged(op, sa, ao + p * bn, sb, bo, f32b, so, oo + p * bn, bn);
            }
        });
        return true;
    }

    /**
     * out[o0 + i] = a[a0 + i] ∘ b[b0 + i] for i in [0, len): both widened a chunk at a time (b read in place when it is
     * F32, {@code f32b}), the fp32 kernel, rounded.
     */
    private static void staged(BinaryOp op, MemorySegment sa, long a0, MemorySegment sb, long b0, boolean f32b, MemorySegment so,
                               long o0, long len) {
        MemorySegment[] t = STAGING.get();
        for (long c = 0; c < len; c += STAGE) {
            int k = (int) Math.min(STAGE, len - c);
            Bf16Lanes.widenRow(sa, a0 + c, t[0], 0, k);
            if (f32b) {
                ContiguousF32Kernels.binaryRange(op, t[0], 0, sb, b0 + c, t[0], 0, 0, k);
            } else {
                Bf16Lanes.widenRow(sb, b0 + c, t[1], 0, k);
                ContiguousF32Kernels.binaryRange(op, t[0], 0, t[1], 0, t[0], 0, 0, k);
            }
            Bf16Lanes.narrowRow(t[0], 0, so, o0 + c, k);
        }
    }

    /** A contiguous bf16 or F32 tensor (RMSNorm's weight and its gradient may be either). */
    private static boolean bf16OrF32(Tensor t) {
        return (t.dtype() == DType.BF16 || t.dtype() == DType.F32) && t.isContiguous();
    }

    /** A weight row as fp32: the F32 tensor itself, or a bf16 one widened into a new array. */
    private static MemorySegment widened(Tensor w, int d) {
        if (w.dtype() == DType.F32) return w.segment().asSlice(w.offset() * 4, 4L * d);
        MemorySegment f = MemorySegment.ofArray(new float[d]);
        Bf16Lanes.widenRow(w.segment(), w.offset(), f, 0, d);
        return f;
    }

    static boolean rmsNorm(Tensor x, Tensor w, double eps, Tensor out, Tensor rstd) {
        if (!bf16(x, out) || !bf16OrF32(w) || (rstd != null && (rstd.dtype() != DType.F32 || !rstd.isContiguous()))) return false;
        int d = x.dim(-1);
        if (d == 0) return false;
        long rows = x.numel() / d;
        MemorySegment sx = x.segment(), so = out.segment(), sw = widened(w, d);
        MemorySegment sr = rstd == null ? null : rstd.segment();
        long xo = x.offset(), oo = out.offset(), ro = rstd == null ? 0 : rstd.offset();
        CpuThreads.parallelFor(ContiguousF32Kernels.chunks(rows, d), CpuThreads.count(), chunk -> {
            MemorySegment xr = stagingRow(0, d), or = stagingRow(1, d);
            for (long r = ContiguousF32Kernels.chunkStart(rows, d, chunk), r1 = ContiguousF32Kernels.chunkStart(rows, d, chunk + 1); r < r1; r++) {
                Bf16Lanes.widenRow(sx, xo + r * d, xr, 0, d);
                float rs = ContiguousF32Kernels.rmsNormRow(xr, 0, sw, 0, or, 0, d, eps);
                Bf16Lanes.narrowRow(or, 0, so, oo + r * d, d);
                if (sr != null) sr.setAtIndex(Buf.F, ro + r, rs);
            }
        });
        return true;
    }

    static boolean rmsNormBackward(Tensor x, Tensor w, Tensor rstd, Tensor dy, Tensor dx, Tensor dw) {
        if (!bf16(x, dy, dx) || !bf16OrF32(w) || rstd.dtype() != DType.F32 || !rstd.isContiguous() || (dw != null && !bf16OrF32(dw))) {
            return false;
        }
        int d = x.dim(-1);
        if (d == 0) return false;
        long rows = x.numel() / d;
        MemorySegment sx = x.segment(), sg = dy.segment(), so = dx.segment(), sr = rstd.segment(), sw = widened(w, d);
        long xo = x.offset(), go = dy.offset(), oo = dx.offset(), ro = rstd.offset();
        float[] dwAcc = dw == null ? null : new float[d];
        MemorySegment xr = stagingRow(0, d), gr = stagingRow(1, d), or = stagingRow(2, d);
        for (long r = 0; r < rows; r++) { // in row order, as the fp32 kernel: dwAcc sums the rows in order
            Bf16Lanes.widenRow(sx, xo + r * d, xr, 0, d);
            Bf16Lanes.widenRow(sg, go + r * d, gr, 0, d);
            ContiguousF32Kernels.rmsNormBackwardRow(xr, 0, sw, 0, sr.getAtIndex(Buf.F, ro + r), gr, 0, or, 0, d, dwAcc);
            Bf16Lanes.narrowRow(or, 0, so, oo + r * d, d);
        }
        if (dw != null) {
            MemorySegment acc = MemorySegment.ofArray(dwAcc);
            if (dw.dtype() == DType.F32) MemorySegment.copy(acc, 0, dw.segment(), dw.offset() * 4, 4L * d);
            else Bf16Lanes.narrowRow(acc, 0, dw.segment(), dw.offset(), d);
        }
        return true;
    }
}
