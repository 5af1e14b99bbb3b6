package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/**
 * bitsandbytes block-wise dynamic 8-bit quantization: per block absmax, then a binary search over the sorted 256-entry
 * code book that rounds to the nearest entry by midpoint (the search of bitsandbytes' quantize kernels).
 */
final class BlockQuant {
    private BlockQuant() {}

    /** Index of the code nearest to x (the code book sorted ascending), exactly as bitsandbytes' binary search. */
    static int nearest(float[] code, float x, boolean signed) {
        int pivot = 127, upperPivot = 255, lowerPivot = 0;
        float lower = signed ? -1.0f : 0.0f, upper = 1.0f;
        float val = code[pivot];
        for (int i = 64; i > 0; i >>= 1) {
            if (x > val) {
                lowerPivot = pivot;
                lower = val;
                pivot += i;
            } else {
                upperPivot = pivot;
                upper = val;
                pivot -= i;
            }
            val = code[pivot];
        }
        if (x > val) {
            float mid = (upper + val) * 0.5f;
            return x > mid ? upperPivot : pivot;
        } else {
            float mid = (lower + val) * 0.5f;
            return x < mid ? lowerPivot : pivot;
        }
    }

    static float[] codeBook(Tensor code) {
        Buf bc = Buf.of(code);
        Loop.Flat f = new Loop.Flat(code);
        float[] c = new float[256];
        for (int i = 0; i < 256; i++) c[i] = bc.getF(f.at(i));
        return c;
    }

    static void quantize(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        float[] c = codeBook(code);
        Buf bx = Buf.of(x), ba = Buf.of(absmax), bq = Buf.of(q);
        Loop.Flat fx = new Loop.Flat(x), fa = new Loop.Flat(absmax), fq = new Loop.Flat(q);
        long n = x.numel();
        for (long start = 0, blk = 0; start < n; start += blockSize, blk++) {
            long end = Math.min(n, start + blockSize);
            float amax = 0f;
            for (long i = start; i < end; i++) {
                float v = Math.abs(bx.getF(fx.at(i)));
                if (v > amax || v != v) amax = v;
            }
            ba.set(fa.at(blk), amax);
            // a zero block has nothing to scale: map it to the code nearest 0 (dequantizes to 0 either way)
            for (long i = start; i < end; i++) {
                float v = bx.getF(fx.at(i));
                float xn = amax == 0f ? 0f : v / amax;
                int idx = nearest(c, xn, signed);
                if (signed && (Float.floatToRawIntBits(c[idx]) < 0) != (Float.floatToRawIntBits(v) < 0)) {
                    idx += v > 0f ? 1 : -1;
                    idx = Math.max(0, Math.min(255, idx));
                }
                bq.setLong(fq.at(i), idx);
            }
        }
    }

    static void dequantize(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        float[] c = codeBook(code);
        Buf bq = Buf.of(q), ba = Buf.of(absmax), bo = Buf.of(out);
        Loop.Flat fq = new Loop.Flat(q), fa = new Loop.Flat(absmax), fo = new Loop.Flat(out);
        long n = out.numel();
        for (long start = 0, blk = 0; start < n; start += blockSize, blk++) {
            long end = Math.min(n, start + blockSize);
            float amax = ba.getF(fa.at(blk));
            for (long i = start; i < end; i++) {
                bo.set(fo.at(i), c[(int) bq.getLong(fq.at(i))] * amax);
            }
        }
    }
}
