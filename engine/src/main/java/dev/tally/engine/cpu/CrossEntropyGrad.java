package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * {@link dev.tally.engine.Ops#softmaxCrossEntropyGrad} on the CPU: (exp(logit − lse) − onehot) · rowScale in one pass
 * over the logits, where the loss used to make four (subtract, exp, scatter the −1, scale), each reading and writing
 * all N×V values. Every element is computed in fp32 by the same steps on every path — fl(x − lse), then
 * {@link ContiguousF32Kernels#exp}, then fl(e − 1) at the target, then fl(· × scale) — so a row gives the same bits
 * whether it is read with vectors (F32 rows with unit column stride) or element by element (other dtypes and
 * strides) — for contiguous F32 rows the bits the four separate ops gave on their vector paths. Rows are independent:
 * the thread count cannot change a result.
 */
final class CrossEntropyGrad {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private CrossEntropyGrad() {}

    static void run(Tensor logits, Tensor lse, Tensor targets, long targetOffset, Tensor rowScale, Tensor out) {
        int n = logits.dim(0), c = logits.dim(1);
        if (n == 0 || c == 0) return;
        Buf bl = Buf.of(lse), bt = Buf.of(targets), bs = Buf.of(rowScale), bx = Buf.of(logits), bo = Buf.of(out);
        long lo = lse.offset(), ls = lse.stride(0), to = targets.offset(), ts = targets.stride(0);
        long so = rowScale.offset(), ss = rowScale.stride(0);
        boolean vectors = f32Rows(logits) && f32Rows(out);
        int tasks = (int) Math.max(1, Math.min(n, (long) n * c / (1 << 16)));
        CpuThreads.parallelFor(tasks, CpuThreads.count(), task -> {
            int r0 = (int) ((long) n * task / tasks), r1 = (int) ((long) n * (task + 1) / tasks);
            for (int r = r0; r < r1; r++) {
                float m = bl.getF(lo + r * ls), scale = bs.getF(so + r * ss);
                long id = bt.getLong(to + r * ts);
                // the target's column in this tile, or -1 (another tile's, or ignore_index); no overflow for any long id
                int col = id >= targetOffset && id - targetOffset < c ? (int) (id - targetOffset) : -1;
                long xb = logits.offset() + r * logits.stride(0), ob = out.offset() + r * out.stride(0);
                if (vectors) {
                    vectorRow(logits.segment(), xb, out.segment(), ob, c, m, scale, col);
                } else {
                    scalarRow(bx, xb, logits.stride(1), bo, ob, out.stride(1), c, m, scale, col);
                }
            }
        });
    }

    private static boolean f32Rows(Tensor t) {
        return t.dtype() == DType.F32 && (t.stride(1) == 1 || t.dim(1) == 1);
    }

    private static void vectorRow(MemorySegment sx, long xb, MemorySegment so, long ob, int c, float m, float scale, int col) {
        float target = col >= 0 ? sx.getAtIndex(Buf.F, xb + col) : 0f; // read first: out may be the logits themselves
        FloatVector vm = FloatVector.broadcast(S, m), vs = FloatVector.broadcast(S, scale);
        int j = 0;
        for (; j + L <= c; j += L) {
            FloatVector x = FloatVector.fromMemorySegment(S, sx, (xb + j) * 4, NATIVE);
            ContiguousF32Kernels.exp(x.sub(vm)).mul(vs).intoMemorySegment(so, (ob + j) * 4, NATIVE);
        }
        for (; j < c; j++) so.setAtIndex(Buf.F, ob + j, ContiguousF32Kernels.exp(sx.getAtIndex(Buf.F, xb + j) - m) * scale);
        if (col >= 0) so.setAtIndex(Buf.F, ob + col, (ContiguousF32Kernels.exp(target - m) - 1f) * scale);
    }

    private static void scalarRow(Buf bx, long xb, long xs, Buf bo, long ob, long os, int c, float m, float scale, int col) {
        float target = col >= 0 ? bx.getF(xb + col * xs) : 0f;
        for (int j = 0; j < c; j++) bo.set(ob + j * os, ContiguousF32Kernels.exp(bx.getF(xb + j * xs) - m) * scale);
        if (col >= 0) bo.set(ob + col * os, (ContiguousF32Kernels.exp(target - m) - 1f) * scale);
    }
}
