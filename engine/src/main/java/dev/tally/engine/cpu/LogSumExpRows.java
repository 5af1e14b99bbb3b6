package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Log-sum-exp of each contiguous F32 row (the loss's pass over the N×V logits): the row max with vectors (exact in any
 * order), then Σ exp(x − max) with {@link VectorExp} into one accumulator per lane, the lanes and the scalar tail added
 * in a fixed order in double. Rows are independent, so the result does not depend on the thread count, and no step
 * depends on the JIT tier. The profile of a training step had the scalar double loop as slow as the head's GEMM.
 */
final class LogSumExpRows {
    private static final int L = VectorExp.S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private LogSumExpRows() {}

    static boolean reduce(Tensor x, Tensor out) {
        boolean contiguous = ContiguousF32Kernels.f32(x, out);
        if (!contiguous && !rowsOfMatrix(x, out) || x.rank() == 0) return false;
        int len = x.dim(-1);
        if (len == 0) return false;
        long rows = x.numel() / len;
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        long xStep = contiguous ? len : x.stride(0), oStep = contiguous ? 1 : out.stride(0);
        int tasks = (int) Math.max(1, Math.min(rows, rows * len / (1 << 16)));
        CpuThreads.parallelFor(tasks, CpuThreads.count(), t -> {
            long r0 = rows * t / tasks, r1 = rows * (t + 1) / tasks;
            float[] lanes = new float[L];
            for (long r = r0; r < r1; r++) so.setAtIndex(Buf.F, oo + r * oStep, (float) row(sx, xo + r * xStep, len, lanes));
        });
        return true;
    }

    /** An F32 [R, C] view whose rows are contiguous (a tile of a wider buffer) into an F32 [R, 1] of any row stride. */
    private static boolean rowsOfMatrix(Tensor x, Tensor out) {
        return x.rank() == 2 && out.rank() == 2 && x.dtype() == DType.F32 && out.dtype() == DType.F32 && x.stride(1) == 1;
    }

    static double row(MemorySegment sx, long base, int len, float[] lanes) {
        FloatVector vmax = FloatVector.broadcast(VectorExp.S, Float.NEGATIVE_INFINITY);
        FloatVector nan = FloatVector.zero(VectorExp.S);
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector v = FloatVector.fromMemorySegment(VectorExp.S, sx, (base + i) * 4, NATIVE);
            nan = nan.add(v.sub(v)); // NaN and ±∞ lanes become NaN; checked exactly below
            vmax = vmax.max(v);
        }
        float m = vmax.reduceLanes(VectorOperators.MAX);
        boolean special = Float.isNaN(nan.reduceLanes(VectorOperators.ADD));
        for (int j = i; j < len; j++) {
            float v = sx.getAtIndex(Buf.F, base + j);
            special |= !Float.isFinite(v);
            m = Math.max(m, v);
        }
        if (special) return slowRow(sx, base, len);
        FloatVector shift = FloatVector.broadcast(VectorExp.S, m), acc = FloatVector.zero(VectorExp.S);
        i = 0;
        for (; i + L <= len; i += L) {
            acc = acc.add(VectorExp.expNonPositive(FloatVector.fromMemorySegment(VectorExp.S, sx, (base + i) * 4, NATIVE).sub(shift)));
        }
        acc.intoArray(lanes, 0);
        double sum = 0;
        for (float l : lanes) sum += l;
        for (; i < len; i++) sum += VectorExp.expNonPositive(sx.getAtIndex(Buf.F, base + i) - m);
        return m + Math.log(sum);
    }

    /** Rows holding NaN or ±∞: NaN if any NaN, else the max when it is infinite, else the finite sum without ±∞ terms. */
    private static double slowRow(MemorySegment sx, long base, int len) {
        double m = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) {
            float v = sx.getAtIndex(Buf.F, base + j);
            if (v != v) return Double.NaN;
            m = Math.max(m, v);
        }
        if (Double.isInfinite(m)) return m;
        double sum = 0;
        for (int j = 0; j < len; j++) {
            float v = sx.getAtIndex(Buf.F, base + j);
            if (v != Float.NEGATIVE_INFINITY) sum += VectorExp.expNonPositive((float) (v - m));
        }
        return m + Math.log(sum);
    }
}
