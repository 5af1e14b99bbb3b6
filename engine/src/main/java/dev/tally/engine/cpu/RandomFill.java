package dev.tally.engine.cpu;

import dev.tally.engine.Distribution;
import dev.tally.engine.Tensor;

/** Ops.random on the CPU: element i (row-major) takes lane i % 4 of Philox block (offset + i / 4). */
final class RandomFill {
    private RandomFill() {}

    static void random(Tensor out, Distribution dist, long seed, long offset, double a, double b) {
        Buf o = Buf.of(out);
        Loop.Flat f = new Loop.Flat(out);
        long n = out.numel();
        int[] r = new int[4];
        double[] v = new double[4];
        for (long blk = 0; blk * 4 < n; blk++) {
            Philox.generate(seed, offset + blk, r);
            if (dist == Distribution.UNIFORM) {
                for (int l = 0; l < 4; l++) v[l] = a + (b - a) * Philox.uniform(r[l]);
            } else {
                for (int l = 0; l < 4; l += 2) {
                    double u0 = Philox.uniform(r[l]), u1 = Philox.uniform(r[l + 1]);
                    double rad = Math.sqrt(-2.0 * Math.log(u0));
                    double th = 2.0 * Math.PI * u1;
                    v[l] = a + b * rad * Math.cos(th);
                    v[l + 1] = a + b * rad * Math.sin(th);
                }
            }
            for (int l = 0; l < 4; l++) {
                long i = blk * 4 + l;
                if (i >= n) break;
                o.set(f.at(i), v[l]);
            }
        }
    }
}
