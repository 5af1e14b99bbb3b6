// Host-side check of the kernels' pure arithmetic (no GPU needed): nvcc compiles this for the CPU; the engine test
// CudaKernelHostCheckTest runs it and compares with the CPU backend's Philox and Tensor index arithmetic.
// Output: "philox SEED CTR r0 r1 r2 r3", "uniform R U", "offset I OFF", "row R OFF", "unary OP X Y",
// "grad OP X DY Y", "binary OP A B Y" lines (OP = the enum ordinal the host passes).
#include <stdio.h>
#include "../../main/cuda/tally_kernels.cu"

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
    return 0;
}
