package dev.tally.engine.cpu;

import dev.tally.engine.GroupRounding;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Tensor;

/**
 * Asymmetric per-group quantization (Q-GaLore's int8 weights, 4-bit projections) on the CPU, in float32 as the references
 * compute it: every division, rounding and subtraction is a float operation, so codes match torch's bit for bit. Groups
 * are independent; each is scanned in index order, so results never depend on threads or JIT tier.
 */
final class GroupQuant {
    private GroupQuant() {}

    /** The smallest positive range a group may have (the references' clamp(min=1e-5)). */
    static final float MIN_RANGE = 1e-5f;

    static void quantize(Tensor x, GroupRounding rounding, QuantizedTensor q) {
        int levels = (1 << q.bits()) - 1;
        Buf bx = Buf.of(x), bs = Buf.of(q.scales()), bz = Buf.of(q.zeros()), bq = Buf.of(q.codes());
        Loop.Flat fx = new Loop.Flat(x), fs = new Loop.Flat(q.scales()), fz = new Loop.Flat(q.zeros()), fq = new Loop.Flat(q.codes());
        Buf br = null;
        Loop.Flat fr = null;
        if (rounding instanceof GroupRounding.Given(Tensor r)) {
            br = Buf.of(r);
            fr = new Loop.Flat(r);
        }
        long seed = 0, offset = 0;
        boolean philox = rounding instanceof GroupRounding.Philox;
        if (rounding instanceof GroupRounding.Philox(long sd, long off)) {
            seed = sd;
            offset = off;
        }
        int[] block = new int[4];
        long cachedBlock = -1;
        long n = q.numel();
        int g = q.groupSize();
        for (long start = 0, grp = 0; start < n; start += g, grp++) {
            long end = Math.min(n, start + g);
            float mn = Float.POSITIVE_INFINITY, mx = Float.NEGATIVE_INFINITY;
            for (long i = start; i < end; i++) {
                float v = bx.getF(fx.at(i));
                mn = Math.min(mn, v);
                mx = Math.max(mx, v);
            }
            float s = Math.max(mx - mn, MIN_RANGE) / levels;
            float z = clamp(-(float) Math.rint(mn / s), levels);
            bs.set(fs.at(grp), s);
            bz.set(fz.at(grp), z);
            for (long i = start; i < end; i++) {
                float u = bx.getF(fx.at(i)) / s;
                float rounded;
                if (br != null) {
                    float fl = (float) Math.floor(u);
                    rounded = br.getF(fr.at(i)) < u - fl ? (float) Math.ceil(u) : fl;
                } else if (philox) {
                    long blk = offset + i / 4;
                    if (blk != cachedBlock) {
                        Philox.generate(seed, blk, block);
                        cachedBlock = blk;
                    }
                    double r = Philox.uniform(block[(int) (i & 3)]);
                    float fl = (float) Math.floor(u);
                    rounded = r < u - fl ? (float) Math.ceil(u) : fl;
                } else {
                    rounded = (float) Math.rint(u);
                }
                int code = (int) clamp(rounded + z, levels);
                if (q.bits() == 8) {
                    bq.setLong(fq.at(i), code);
                } else {
                    long at = fq.at(i >>> 1);
                    int old = (int) bq.getLong(at);
                    int packed = (i & 1) == 0 ? (old & 0xF0) | code : (old & 0x0F) | (code << 4);
                    bq.setLong(at, packed);
                }
            }
        }
    }

    static void dequantize(QuantizedTensor q, Tensor out) {
        Buf bs = Buf.of(q.scales()), bz = Buf.of(q.zeros()), bq = Buf.of(q.codes()), bo = Buf.of(out);
        Loop.Flat fs = new Loop.Flat(q.scales()), fz = new Loop.Flat(q.zeros()), fq = new Loop.Flat(q.codes()), fo = new Loop.Flat(out);
        long n = q.numel();
        int g = q.groupSize();
        for (long start = 0, grp = 0; start < n; start += g, grp++) {
            long end = Math.min(n, start + g);
            float s = bs.getF(fs.at(grp)), z = bz.getF(fz.at(grp));
            for (long i = start; i < end; i++) {
                bo.set(fo.at(i), (code(bq, fq, q.bits(), i) - z) * s);
            }
        }
    }

    static int code(Buf bq, Loop.Flat fq, int bits, long i) {
        if (bits == 8) return (int) bq.getLong(fq.at(i));
        int b = (int) bq.getLong(fq.at(i >>> 1));
        return (i & 1) == 0 ? b & 0x0F : (b >>> 4) & 0x0F;
    }

    /** clamp(v, 0, levels); NaN stays NaN (and becomes code 0 when cast). */
    private static float clamp(float v, int levels) {
        return v < 0 ? 0f : v > levels ? levels : v;
    }
}
