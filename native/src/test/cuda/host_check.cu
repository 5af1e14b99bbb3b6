// Host-side check of the kernels' pure arithmetic (no GPU needed): nvcc compiles this for the CPU; the engine test
// CudaKernelHostCheckTest runs it and compares with the CPU backend's Philox and Tensor index arithmetic.
// Output: "philox SEED CTR r0 r1 r2 r3", "uniform R U", "offset I OFF", "row R OFF", "unary OP X Y",
// "grad OP X DY Y", "binary OP A B Y" lines (OP = the enum ordinal the host passes); then kernel per-element and
// per-thread work run on host buffers: "ibinary DT OP A B Y" (integer binary_at, DT = I32/I64 ordinal),
// "iscalar OP A S Y" (I64 binary_scalar_at), "reduce CASE OP Y" (reduceAll's two stages emulated: 7 blocks of 64
// threads), "dweight CHUNKS J Y" (RMSNorm dweight's two stages).
#include <stdio.h>
#include "../../main/cuda/tally_kernels.cu"

static TDesc host_desc(void* base, int dtype, long long n) {
    TDesc t = {};
    t.base = (char*) base; t.dtype = dtype; t.rank = 1; t.numel = n; t.dims[0] = (int) n; t.strides[0] = 1;
    return t;
}

// Integers above 2^24 (where fp32 rounds) through the exact path, as tally_binary decides it (any_integer).
static void integer_checks() {
    long long a64[] = {16777217LL, (1LL << 40) + 3, -((1LL << 33) + 1), 9007199254740991LL, 123456789012LL, -5, 7};
    long long b64[] = {16777216LL, (1LL << 40) + 2, 3, 2, -7, 16777217LL, -2};
    const int n = 7;
    long long o64[n];
    TDesc a = host_desc(a64, DT_I64, n), b = host_desc(b64, DT_I64, n), o = host_desc(o64, DT_I64, n);
    for (int op = B_ADD; op <= B_GE; op++) {
        bool exact = any_integer(a.dtype, b.dtype, o.dtype);
        for (int i = 0; i < n; i++) {
            binary_at(op, a, b, o, i, exact);
            printf("ibinary %d %d %lld %lld %lld\n", DT_I64, op, a64[i], b64[i], o64[i]);
        }
        for (int i = 0; i < n; i++) {
            binary_scalar_at(op, a, 16777216.0, o, i, any_integer(a.dtype, o.dtype, DT_F32));
            printf("iscalar %d %lld %.17g %lld\n", op, a64[i], 16777216.0, o64[i]);
        }
    }
    int a32[] = {16777217, 2147483647, -2147483647, 33554431, 100000007, -16777219, 5};
    int b32[] = {16777216, 1, -1, 33554430, 3, 16777218, 2};
    int o32[n];
    TDesc a2 = host_desc(a32, DT_I32, n), b2 = host_desc(b32, DT_I32, n), o2 = host_desc(o32, DT_I32, n);
    for (int op = B_ADD; op <= B_GE; op++)
        for (int i = 0; i < n; i++) {
            binary_at(op, a2, b2, o2, i, any_integer(a2.dtype, b2.dtype, o2.dtype));
            printf("ibinary %d %d %d %d %d\n", DT_I32, op, a32[i], b32[i], o32[i]);
        }
}

// The value of element i of reduce case c (the Java test builds the same).
static float reduce_value(int c, long long i) {
    float v = (float) ((i * 7919) % 2001 - 1000) / 64.f;
    if (c == 1 && i == 4321) return tally_nan();
    if (c == 2 && i == 17) return INFINITY;
    if (c == 3) return -INFINITY;
    return v;
}

static void reduce_checks() {
    const int cases = 4, blocks = 7, threads = 64;
    long long sizes[] = {10000, 10000, 10000, 5};
    static float xs[10000];
    for (int c = 0; c < cases; c++) {
        long long n = sizes[c];
        for (long long i = 0; i < n; i++) xs[i] = reduce_value(c, i);
        TDesc x = host_desc(xs, DT_F32, n);
        for (int op = R_SUM; op <= R_LOGSUMEXP; op++) {
            RedState part[blocks];
            for (int b = 0; b < blocks; b++) {           // stage 1: the GRID_STRIDE share of each thread, then the block
                RedState block = red_init(op);
                for (int t = 0; t < threads; t++) {
                    RedState s = red_init(op);
                    for (long long i = (long long) b * threads + t; i < n; i += (long long) threads * blocks) {
                        s = red_acc(op, s, ld(x, offset_of(x, i)));
                    }
                    block = red_combine(op, block, s);
                }
                part[b] = block;
            }
            RedState total = red_init(op);             // stage 2
            for (int b = 0; b < blocks; b++) total = red_combine(op, total, part[b]);
            printf("reduce %d %d %.9g\n", c, op, red_finish(op, total, n));
        }
    }
}

// x, dy: [rows, n] and rstd: [rows] with the values the Java test builds.
static void dweight_checks() {
    const long long rows = 100, n = 12;
    static float x[rows * n], dy[rows * n], rstd[rows], partials[16 * n];
    for (long long i = 0; i < rows * n; i++) {
        x[i] = (float) ((i * 37) % 101 - 50) / 16.f;
        dy[i] = (float) ((i * 53) % 97 - 48) / 32.f;
    }
    for (long long r = 0; r < rows; r++) rstd[r] = 0.5f + (float) (r % 7) / 8.f;
    TDesc xd = host_desc(x, DT_F32, rows * n), dyd = host_desc(dy, DT_F32, rows * n), rd = host_desc(rstd, DT_F32, rows);
    xd.rank = dyd.rank = 2;
    xd.dims[0] = dyd.dims[0] = (int) rows; xd.dims[1] = dyd.dims[1] = (int) n;
    xd.strides[0] = dyd.strides[0] = n; xd.strides[1] = dyd.strides[1] = 1;
    int chunk_counts[] = {1, 6, 16};
    for (int chunks : chunk_counts) {
        for (int c = 0; c < chunks; c++) {
            long long lo, hi;
            chunk_rows(rows, chunks, c, &lo, &hi);
            for (long long j = 0; j < n; j++) partials[c * n + j] = dweight_partial(xd, rd, dyd, j, lo, hi);
        }
        for (long long j = 0; j < n; j++) printf("dweight %d %lld %.9g\n", chunks, j, dweight_total(partials, chunks, n, j));
    }
}

// The value of key i of argsort case c (the Java test builds the same): ties, -0/+0, NaN and infinities included.
static float argsort_key(int c, long long i) {
    if (c % 2 == 1) return (float) ((i * 37) % 11) - 5.0f;           // many ties
    if (i % 13 == 3) return tally_nan();
    if (i % 17 == 5) return -0.0f;
    if (i % 17 == 6) return 0.0f;
    if (i % 29 == 7) return (i % 2) ? INFINITY : -INFINITY;
    return (float) ((i * 7919) % 2003 - 1000) / 8.0f;
}

// The device's sorting network run stage by stage on the host: "argsort CASE N I ORDER_I" lines.
static void argsort_checks() {
    long long sizes[] = {1, 2, 3, 5, 16, 17, 100, 1000, 1000};
    static float ks[1000];
    static int order[1000];
    for (int c = 0; c < 9; c++) {
        long long n = sizes[c];
        for (long long i = 0; i < n; i++) ks[i] = argsort_key(c, i);
        TDesc keys = host_desc(ks, DT_F32, n);
        for (long long i = 0; i < n; i++) order[i] = (int) i;
        long long p2 = 1;
        while (p2 < n) p2 *= 2;
        for (long long k = 2; k <= p2; k *= 2)
            for (long long j = k / 2; j >= 1; j /= 2)
                for (long long t = 0; t < p2 / 2; t++) {
                    long long lo, hi;
                    if (argsort_pair(t, n, k, j, &lo, &hi)) argsort_exchange(keys, order, lo, hi);
                }
        for (long long i = 0; i < n; i++) printf("argsort %d %lld %lld %d\n", c, n, i, order[i]);
    }
}

int main() {
    unsigned long long seeds[] = {0ull, 42ull, 0x123456789ABCDEFull, 0xFFFFFFFFFFFFFFFFull};
    unsigned long long ctrs[] = {0ull, 1ull, 5ull, 0x1FFFFFFFFull, 123456789012345ull};
    for (unsigned long long seed : seeds)
        for (unsigned long long ctr : ctrs) {
            unsigned c[4] = {(unsigned) ctr, (unsigned) (ctr >> 32), 0u, 0u};
            philox(c, (unsigned) seed, (unsigned) (seed >> 32));
            printf("philox %llu %llu %u %u %u %u\n", seed, ctr, c[0], c[1], c[2], c[3]);
        }
    unsigned rs[] = {0u, 255u, 256u, 0x80000000u, 0xFFFFFFFFu};
    for (unsigned r : rs) printf("uniform %u %.17g\n", r, uniform01(r));
    // a [3, 4, 5] view: transposed (strides 1, 15, 3) with a base offset folded into the pointer on the host
    TDesc t = {};
    t.rank = 3; t.dims[0] = 3; t.dims[1] = 4; t.dims[2] = 5;
    t.strides[0] = 1; t.strides[1] = 15; t.strides[2] = 3;
    for (long long i = 0; i < 60; i += 7) printf("offset %lld %lld\n", i, offset_of(t, i));
    for (long long r = 0; r < 12; r += 5) printf("row %lld %lld\n", r, row_offset(t, r));
    float xs[] = {-2.5f, -1.0f, -0.0f, 0.0f, 0.3f, 1.0f, 3.75f};
    for (int op = U_NEG; op <= U_ISFINITE; op++)
        for (float x : xs) {
            printf("unary %d %.9g %.9g\n", op, x, unary_f(op, x));
            printf("grad %d %.9g %.9g %.9g\n", op, x, 0.75f, unary_grad(op, x, 0.75f));
        }
    float as[] = {-2.0f, -0.5f, 0.0f, 1.5f, 3.0f};
    for (int op = B_ADD; op <= B_GE; op++)
        for (float a : as)
            for (float b : as) printf("binary %d %.9g %.9g %.9g\n", op, a, b, binary_f(op, a, b));
    integer_checks();
    reduce_checks();
    dweight_checks();
    argsort_checks();
    return 0;
}
