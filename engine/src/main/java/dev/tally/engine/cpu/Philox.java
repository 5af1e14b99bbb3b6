package dev.tally.engine.cpu;

/**
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", Random123): a counter-based generator,
 * so element i's value depends only on (seed, offset, i) and every backend produces the same stream.
 */
public final class Philox {
    static final int M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    static final int W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    private Philox() {}

    /** Ten rounds on counter {@code c} (4 words, updated in place to the output) with key (k0, k1). */
    /** One block for counter (c0..c3) and key (k0, k1), returned as a new array. */
    public static int[] block(int c0, int c1, int c2, int c3, int k0, int k1) {
        int[] c = {c0, c1, c2, c3};
        block(c, k0, k1);
        return c;
    }

    public static void block(int[] c, int k0, int k1) {
        int c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                k0 += W0;
                k1 += W1;
            }
            long p0 = (M0 & 0xFFFFFFFFL) * (c0 & 0xFFFFFFFFL);
            long p1 = (M1 & 0xFFFFFFFFL) * (c2 & 0xFFFFFFFFL);
            int hi0 = (int) (p0 >>> 32), lo0 = (int) p0;
            int hi1 = (int) (p1 >>> 32), lo1 = (int) p1;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
        }
        c[0] = c0;
        c[1] = c1;
        c[2] = c2;
        c[3] = c3;
    }

    /** The 4 outputs for block {@code counter} (as (lo, hi, 0, 0)) under key {@code seed} (lo, hi). */
    public static void generate(long seed, long counter, int[] out) {
        out[0] = (int) counter;
        out[1] = (int) (counter >>> 32);
        out[2] = 0;
        out[3] = 0;
        block(out, (int) seed, (int) (seed >>> 32));
    }

    /** Uniform in (0, 1): ((r >>> 8) + 0.5) · 2^-24, exact in double. */
    public static double uniform(int r) {
        return ((r >>> 8) + 0.5) * 0x1.0p-24;
    }
}
