package dev.tally.engine.cpu;

import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.Arrays;

/**
 * Strided iteration: walks an output shape row by row (a row = the last dimension) and tells the body where each
 * operand's row starts. Operands are aligned to the output shape with numpy broadcasting (broadcast dims get stride 0).
 */
final class Loop {
    private Loop() {}

    /** Body of a row walk: {@code row} counts rows in row-major order; {@code base[k]} is operand k's first element. */
    interface Row {
        void run(long row, long[] base, int n);
    }

    /** Strides of {@code t} viewed as broadcast to {@code target} (right-aligned; size-1 or missing dims get 0). */
    static long[] stridesFor(Tensor t, Shape target) {
        int r = target.rank();
        long[] s = new long[r];
        long[] ts = t.strides();
        for (int i = 0; i < r; i++) {
            int j = i - (r - t.rank());
            if (j < 0) continue;
            s[i] = t.dim(j) == 1 && target.dims()[i] != 1 ? 0 : ts[j];
        }
        return s;
    }

    /** Walks {@code dims} row by row; operand k has strides {@code strides[k]} and starts at {@code offsets[k]}. */
    static void rows(int[] dims, long[][] strides, long[] offsets, Row body) {
        for (int d : dims) if (d == 0) return;
        walk(dims, strides, offsets, 0, rowCount(dims), body);
    }

    /** Rows of {@code dims}: the product of all but the last dimension. */
    private static long rowCount(int[] dims) {
        long rows = 1;
        for (int i = 0; i < dims.length - 1; i++) rows *= dims[i];
        return rows;
    }

    /** Rows [r0, r1) of {@link #rows}' walk (no dimension is 0): the odometer started at r0, then advanced row by row. */
    private static void walk(int[] dims, long[][] strides, long[] offsets, long r0, long r1, Row body) {
        int r = dims.length, ops = offsets.length;
        int n = r == 0 ? 1 : dims[r - 1];
        int[] idx = new int[Math.max(0, r - 1)];
        long[] base = offsets.clone();
        long rem = r0;
        for (int i = r - 2; i >= 0; i--) {
            idx[i] = (int) (rem % dims[i]);
            rem /= dims[i];
            for (int k = 0; k < ops; k++) base[k] += idx[i] * strides[k][i];
        }
        for (long row = r0; row < r1; row++) {
            body.run(row, base, n);
            // odometer over the leading dims, updating every operand's base incrementally
            for (int i = r - 2; i >= 0; i--) {
                if (++idx[i] < dims[i]) {
                    for (int k = 0; k < ops; k++) base[k] += strides[k][i];
                    break;
                }
                idx[i] = 0;
                for (int k = 0; k < ops; k++) base[k] -= strides[k][i] * (dims[i] - 1L);
            }
        }
    }

    /**
     * {@link #rows} with the rows split over the CPU threads when there are enough elements; each row is walked by one
     * thread exactly as {@link #rows} walks it, so the results are the same bits whatever the split. Only for bodies whose
     * rows are independent (nothing accumulated across rows) and whose output does not overlap an input other than as
     * the very same view: callers check with {@link #rowsIndependent}, and fall back to {@link #rows} otherwise.
     */
    static void parallelRows(int[] dims, long[][] strides, long[] offsets, Row body) {
        parallelRows(dims, strides, offsets, body, 1);
    }

    /** {@link #parallelRows} where each output element costs {@code work} element visits (a reduction's length). */
    static void parallelRows(int[] dims, long[][] strides, long[] offsets, Row body, long work) {
        for (int d : dims) if (d == 0) return;
        int n = dims.length == 0 ? 1 : dims[dims.length - 1];
        long total = rowCount(dims);
        int tasks = (int) Math.max(1, Math.min(total, total * n * Math.max(1, work) / (1 << 15)));
        if (tasks == 1 || CpuThreads.count() == 1) {
            walk(dims, strides, offsets, 0, total, body);
            return;
        }
        CpuThreads.parallelFor(tasks, CpuThreads.count(), t -> walk(dims, strides, offsets, total * t / tasks, total * (t + 1) / tasks, body));
    }

    /**
     * Walks out's rows ({@link #rows}' contract) over the threads when {@link #rowsIndependent} allows it, in order
     * otherwise. For bodies that compute each output row from its own input rows and nothing else.
     */
    static void outputRows(Tensor out, Tensor[] inputs, long[][] strides, long[] offsets, Row body) {
        outputRows(out, inputs, strides, offsets, body, 1);
    }

    /** {@link #outputRows} where each output element costs {@code work} element visits (a reduction's length). */
    static void outputRows(Tensor out, Tensor[] inputs, long[][] strides, long[] offsets, Row body, long work) {
        if (rowsIndependent(out, inputs)) parallelRows(out.dims(), strides, offsets, body, work);
        else rows(out.dims(), strides, offsets, body);
    }

    /**
     * Whether rows of {@code out} can be written in any order: no element of out is reached twice (no zero stride over a
     * dimension longer than one) and every input is either the very same view as out or shares none of its bytes.
     */
    static boolean rowsIndependent(Tensor out, Tensor... inputs) {
        int[] d = out.dims();
        long[] s = out.strides();
        for (int i = 0; i < d.length; i++) if (d[i] > 1 && s[i] == 0) return false;
        for (Tensor in : inputs) {
            if (in == null) continue;
            boolean sameView = in.segment().address() == out.segment().address() && in.offset() == out.offset()
                    && in.dtype() == out.dtype() && Arrays.equals(in.strides(), s) && Arrays.equals(in.dims(), d);
            if (!sameView && overlaps(in, out)) return false;
        }
        return true;
    }

    /** Whether the byte ranges the two views can reach intersect (a conservative test: their extents, not their elements). */
    private static boolean overlaps(Tensor a, Tensor b) {
        long[] ea = extent(a), eb = extent(b);
        return ea[0] < eb[1] && eb[0] < ea[1];
    }

    /** [first byte, one past the last byte] of the elements a view can reach, as addresses. */
    private static long[] extent(Tensor t) {
        long es = t.dtype().byteSize(), lo = t.offset(), hi = t.offset();
        int[] d = t.dims();
        long[] s = t.strides();
        for (int i = 0; i < d.length; i++) {
            if (d[i] == 0) return new long[] {0, 0};
            long span = (d[i] - 1L) * s[i];
            if (span < 0) lo += span; else hi += span;
        }
        long base = t.segment().address();
        return new long[] {base + lo * es, base + (hi + 1) * es};
    }

    /** Inner (last-dim) stride of an aligned stride array, 0 for rank 0. */
    static long inner(long[] s) {
        return s.length == 0 ? 0 : s[s.length - 1];
    }

    /** Element offset (from the storage start) of the {@code flat}-th element of t in row-major order. */
    static long flatOffset(Tensor t, long flat, long[] strides) {
        long off = t.offset();
        int[] d = t.dims();
        for (int i = d.length - 1; i >= 0; i--) {
            long q = flat / d[i];
            off += (flat - q * d[i]) * strides[i];
            flat = q;
        }
        return off;
    }

    /** Maps row-major flat indices of a tensor to storage offsets, fast when the view is contiguous. */
    static final class Flat {
        private final Tensor t;
        private final long[] strides;
        private final boolean contiguous;

        Flat(Tensor t) {
            this.t = t;
            this.strides = t.strides();
            this.contiguous = t.isContiguous();
        }

        long at(long flat) {
            return contiguous ? t.offset() + flat : flatOffset(t, flat, strides);
        }
    }
}
