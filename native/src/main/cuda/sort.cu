// Stable ascending argsort of a float vector on the device (Cut Cross-Entropy's vocabulary order, with no host read):
// a bitonic sorting network in its "flip" form, where every comparator puts the smaller (key, index) pair at the lower
// position, so a length that is not a power of two is padded virtually with +infinity: a comparator reaching past n
// does nothing. Keys compare in Java's Double.compare order (-0 before +0, NaN last), equal keys by index — exactly the
// CPU backend's order. One launch per network stage: log2(P)·(log2(P)+1)/2 launches for P = the power of two ≥ n.
#include <string.h>
#include "tally.cuh"

// A float's bits mapped to an int whose signed order is Double.compare's order of the floats (NaN canonical, last).
TALLY_HD int sortable_key(float f) {
    int b;
    memcpy(&b, &f, 4);
    if (f != f) b = 0x7fc00000;
    return b ^ ((b >> 31) & 0x7fffffff);
}

// The pair compared by comparator t of stage (k, j): k is the length of the sequences being merged, j the span; the
// stage j = k/2 compares mirrored positions (the flip), later stages positions j apart. False: the pair passes n.
TALLY_HD bool argsort_pair(long long t, long long n, long long k, long long j, long long* lo, long long* hi) {
    long long block = t / j, off = t % j;
    *lo = block * 2 * j + off;
    *hi = j == k / 2 ? block * 2 * j + (2 * j - 1 - off) : *lo + j;
    return *hi < n;
}

// One comparator: order[lo] gets the smaller of the two (key, index) pairs.
TALLY_HD void argsort_exchange(const TDesc& keys, int* order, long long lo, long long hi) {
    int a = order[lo], b = order[hi];
    int ka = sortable_key(ld(keys, offset_of(keys, a))), kb = sortable_key(ld(keys, offset_of(keys, b)));
    if (ka > kb || (ka == kb && a > b)) {
        order[lo] = b;
        order[hi] = a;
    }
}

extern "C" __global__ void tally_argsort_init(int* order, long long n) {
    GRID_STRIDE(i, n) order[i] = (int) i;
}

// comparators: half = P/2 threads' worth, each pair disjoint within a stage
extern "C" __global__ void tally_argsort_stage(const __grid_constant__ TDesc keys, int* order, long long n, long long k, long long j,
                                               long long half) {
    GRID_STRIDE(t, half) {
        long long lo, hi;
        if (argsort_pair(t, n, k, j, &lo, &hi)) argsort_exchange(keys, order, lo, hi);
    }
}

extern "C" __global__ void tally_argsort_rank(const int* order, int* rank, long long n) {
    GRID_STRIDE(i, n) rank[order[i]] = (int) i;
}
