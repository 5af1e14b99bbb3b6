// Philox-4x32-10, the same stream as the CPU backend (Ops.random): key = seed (lo, hi), counter = (offset + i/4) as
// (lo, hi, 0, 0), lane i % 4. One thread per block of 4 elements; values computed in fp64 as the CPU does.
#include "tally.cuh"

TALLY_HD void philox(unsigned c[4], unsigned k0, unsigned k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        unsigned long long p0 = (unsigned long long) 0xD2511F53u * c[0];
        unsigned long long p1 = (unsigned long long) 0xCD9E8D57u * c[2];
        unsigned hi0 = (unsigned) (p0 >> 32), lo0 = (unsigned) p0, hi1 = (unsigned) (p1 >> 32), lo1 = (unsigned) p1;
        unsigned n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
    }
}

TALLY_HD double uniform01(unsigned r) { return ((double) (r >> 8) + 0.5) * 0x1.0p-24; }

// dist 0 = UNIFORM [a, b), 1 = NORMAL (mean a, std b)
extern "C" __global__ void tally_random(const __grid_constant__ TDesc out, int dist, unsigned long long seed, unsigned long long offset, double a, double b) {
    long long blocks = (out.numel + 3) / 4;
    GRID_STRIDE(blk, blocks) {
        unsigned long long ctr = offset + (unsigned long long) blk;
        unsigned c[4] = {(unsigned) ctr, (unsigned) (ctr >> 32), 0u, 0u};
        philox(c, (unsigned) seed, (unsigned) (seed >> 32));
        double v[4];
        if (dist == 0) {
            for (int l = 0; l < 4; l++) v[l] = a + (b - a) * uniform01(c[l]);
        } else {
            for (int l = 0; l < 4; l += 2) {
                double u0 = uniform01(c[l]), u1 = uniform01(c[l + 1]);
                // sincospi(2·u1) = sincos(2π·u1) without the general argument reduction, whose slow path needs a
                // stack frame (the argument here is exact: 2·u1 in [0, 2))
                double rad = sqrt(-2.0 * log(u0)), s, c;
                sincospi(2.0 * u1, &s, &c);
                v[l] = a + b * rad * c;
                v[l + 1] = a + b * rad * s;
            }
        }
        for (int l = 0; l < 4; l++) {
            long long i = blk * 4 + l;
            if (i < out.numel) st(out, offset_of(out, i), (float) v[l]);
        }
    }
}
