package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/**
 * Block-wise dynamic 8-bit quantization as bitsandbytes' optimizer kernels do it: per block, absmax = max|x|; each
 * x/absmax is mapped to the nearest entry of a sorted 256-entry code (binary search, ties by midpoint go up); for the
 * signed code a result whose sign differs from x's is moved one code toward x's sign, so a state never flips sign.
 */
final class BlockQuant {
    private BlockQuant() {}

    static void quantize(float[] x, float[] code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        requireContiguous(absmax, q);
        Buf am = new Buf(absmax), qb = new Buf(q);
        int blocks = (x.length + blockSize - 1) / blockSize;
        for (int blk = 0; blk < blocks; blk++) {
            int lo = blk * blockSize, hi = Math.min(x.length, lo + blockSize);
            float m = 0;
            for (int i = lo; i < hi; i++) m = Math.max(m, Math.abs(x[i]));
            am.set(absmax.offset() + blk, m);
            for (int i = lo; i < hi; i++) {
                float v = m == 0 ? 0f : x[i] / m;
                int c = nearest(code, v);
                if (signed && x[i] != 0 && (code[c] < 0) != (x[i] < 0)) {
                    c += x[i] > 0 ? 1 : -1;
                    c = Math.max(0, Math.min(255, c));
                }
                qb.set(q.offset() + i, c);
            }
        }
    }

    static void dequantize(Tensor q, float[] code, Tensor absmax, Tensor out, int blockSize) {
        requireContiguous(absmax, q);
        if (!out.isContiguous()) throw new IllegalArgumentException("dequantizeBlockwise: output " + out + " must be contiguous");
        Buf am = new Buf(absmax), qb = new Buf(q), o = new Buf(out);
        long n = out.numel();
        for (long i = 0; i < n; i++) {
            int c = (int) qb.getLong(q.offset() + i);
            o.set(out.offset() + i, code[c] * am.get(absmax.offset() + i / blockSize));
        }
    }

    /** Index of the code entry nearest to v in a sorted code; exact midpoints round up. */
    static int nearest(float[] code, float v) {
        if (v <= code[0]) return 0;
        if (v >= code[255]) return 255;
        int lo = 0, hi = 255; // invariant: code[lo] <= v < code[hi]
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (code[mid] <= v) lo = mid; else hi = mid;
        }
        float mid = (code[lo] + code[hi]) * 0.5f;
        return v >= mid ? hi : lo;
    }

    private static void requireContiguous(Tensor absmax, Tensor q) {
        if (!absmax.isContiguous() || !q.isContiguous()) {
            throw new IllegalArgumentException("block quantization needs contiguous absmax and codes, got " + absmax + ", " + q);
        }
    }
}
