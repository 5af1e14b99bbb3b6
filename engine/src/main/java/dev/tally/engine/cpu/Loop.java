package dev.tally.engine.cpu;

import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

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
        int r = dims.length;
        int ops = offsets.length;
        for (int d : dims) if (d == 0) return;
        int n = r == 0 ? 1 : dims[r - 1];
        long rowsTotal = 1;
        for (int i = 0; i < r - 1; i++) rowsTotal *= dims[i];
        int[] idx = new int[Math.max(0, r - 1)];
        long[] base = offsets.clone();
        for (long row = 0; row < rowsTotal; row++) {
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
