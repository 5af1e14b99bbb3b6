package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/**
 * Iteration over several same-shaped strided views at once: the outer dimensions by an odometer, the last dimension
 * handed to a kernel as (offsets, inner strides, length) so inner loops stay tight.
 */
final class Strided {
    private Strided() {}

    @FunctionalInterface
    interface Row {
        /** One run along the last dimension: element j of tensor t is at offs[t] + j·inner[t]. */
        void run(long[] offs, long[] inner, int n);
    }

    /** Visits every row (last-dimension run) of {@code ts}, which must all have the same shape. */
    static void rows(Tensor[] ts, Row row) {
        int[] dims = ts[0].dims();
        int r = dims.length;
        int k = ts.length;
        long[][] strides = new long[k][];
        long[] offs = new long[k];
        long[] inner = new long[k];
        for (int t = 0; t < k; t++) {
            strides[t] = ts[t].strides();
            offs[t] = ts[t].offset();
            inner[t] = r == 0 ? 0 : strides[t][r - 1];
        }
        if (ts[0].numel() == 0) return;
        int n = r == 0 ? 1 : dims[r - 1];
        int outer = r - 1;
        int[] idx = new int[Math.max(outer, 0)];
        long[] cur = offs.clone();
        while (true) {
            row.run(cur.clone(), inner, n);
            int d = outer - 1;
            while (d >= 0) {
                idx[d]++;
                for (int t = 0; t < k; t++) cur[t] += strides[t][d];
                if (idx[d] < dims[d]) break;
                for (int t = 0; t < k; t++) cur[t] -= strides[t][d] * dims[d];
                idx[d] = 0;
                d--;
            }
            if (d < 0) return;
        }
    }
}
