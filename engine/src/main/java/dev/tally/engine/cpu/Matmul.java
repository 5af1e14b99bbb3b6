package dev.tally.engine.cpu;

import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.Arrays;

/** Batched matmul with broadcast batch dims over any strided views; fp32 accumulation. */
final class Matmul {
    private Matmul() {}

    static void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        int r = out.rank();
        int m = out.dim(-2), n = out.dim(-1), k = a.dim(-1);
        int[] batchDims = Arrays.copyOf(out.dims(), r - 2);
        Shape batch = Shape.of(batchDims);
        long[] as = batchStrides(a, batch), bs = batchStrides(b, batch), os = Arrays.copyOf(out.strides(), r - 2);
        long batches = batch.numel();
        Buf ba = Buf.of(a), bb = Buf.of(b), bo = Buf.of(out);
        float[] pa = new float[m * k], pb = new float[k * n], c = new float[m * n];
        long am = a.stride(-2), ak = a.stride(-1), bk = b.stride(-2), bn = b.stride(-1), om = out.stride(-2), on = out.stride(-1);
        for (long bi = 0; bi < batches; bi++) {
            long ao = a.offset(), bo0 = b.offset(), oo = out.offset();
            long rem = bi;
            for (int i = batchDims.length - 1; i >= 0; i--) {
                long q = rem / batchDims[i];
                long idx = rem - q * batchDims[i];
                ao += idx * as[i];
                bo0 += idx * bs[i];
                oo += idx * os[i];
                rem = q;
            }
            for (int i = 0; i < m; i++) for (int p = 0; p < k; p++) pa[i * k + p] = ba.getF(ao + i * am + p * ak);
            for (int p = 0; p < k; p++) for (int j = 0; j < n; j++) pb[p * n + j] = bb.getF(bo0 + p * bk + j * bn);
            Arrays.fill(c, 0f);
            for (int i = 0; i < m; i++) {
                for (int p = 0; p < k; p++) {
                    float av = pa[i * k + p];
                    int cb = i * n, bb0 = p * n;
                    for (int j = 0; j < n; j++) c[cb + j] += av * pb[bb0 + j];
                }
            }
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    long at = oo + i * om + j * on;
                    double v = alpha * c[i * n + j];
                    if (beta != 0) v += beta * bo.get(at);
                    bo.set(at, v);
                }
            }
        }
    }

    /** Strides of t's batch dims (all but the last two) aligned to the output batch shape, 0 where broadcast. */
    static long[] batchStrides(Tensor t, Shape batch) {
        int r = batch.rank(), tr = t.rank() - 2;
        long[] s = new long[r];
        long[] ts = t.strides();
        for (int i = 0; i < r; i++) {
            int j = i - (r - tr);
            if (j < 0) continue;
            s[i] = t.dim(j) == 1 ? 0 : ts[j];
        }
        return s;
    }
}
