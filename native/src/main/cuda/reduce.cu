// Reductions. The host moves the reduced dimension last (a permuted view), so reduce-along-dim is a row reduction:
// one block per output element. reduceAll is one block over every element.
#include "tally.cuh"

// Same order as dev.tally.engine.ReduceOp.
enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_SUM_SQUARES, R_NORM2, R_MAX_ABS, R_LOGSUMEXP };

// Reduces n elements at x.base + base_off + j*stride (or flat index j of x when flat) with the whole block.
__device__ float reduce_block(int op, const TDesc& x, long long base_off, long long stride, long long n, bool flat) {
    const float nan = __int_as_float(0x7fc00000);
    if (op == R_MAX || op == R_MIN || op == R_MAX_ABS || op == R_LOGSUMEXP) {
        float m = (op == R_MIN) ? INFINITY : -INFINITY;
        if (op == R_MAX_ABS) m = 0.f;
        for (long long j = threadIdx.x; j < n; j += blockDim.x) {
            float v = ld(x, flat ? offset_of(x, j) : base_off + j * stride);
            if (op == R_MAX_ABS) v = fabsf(v);
            m = (op == R_MIN) ? NanMinOp()(m, v) : NanMaxOp()(m, v);
        }
        m = (op == R_MIN) ? block_reduce(m, NanMinOp(), INFINITY) : block_reduce(m, NanMaxOp(), -INFINITY);
        if (op != R_LOGSUMEXP) return m;
        if (m != m) return nan;
        if (isinf(m)) return m;
        float s = 0.f;
        for (long long j = threadIdx.x; j < n; j += blockDim.x) {
            s += expf(ld(x, flat ? offset_of(x, j) : base_off + j * stride) - m);
        }
        s = block_reduce(s, SumOp(), 0.f);
        return m + logf(s);
    }
    float s = 0.f;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        float v = ld(x, flat ? offset_of(x, j) : base_off + j * stride);
        s += (op == R_SUM_SQUARES || op == R_NORM2) ? v * v : v;
    }
    s = block_reduce(s, SumOp(), 0.f);
    if (op == R_MEAN) return s / (float) n;
    if (op == R_NORM2) return sqrtf(s);
    return s;
}

// x: [..., L] (reduced dim last), out: [..., 1] in the same order; one block per row.
extern "C" __global__ void tally_reduce_rows(int op, const __grid_constant__ TDesc x, const __grid_constant__ TDesc out, long long rows) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        float v = reduce_block(op, x, row_offset(x, r), last_stride(x), last_dim(x), false);
        if (threadIdx.x == 0) st(out, row_offset(out, r), v);
        __syncthreads();
    }
}

extern "C" __global__ void tally_reduce_all(int op, const __grid_constant__ TDesc x, const __grid_constant__ TDesc out) {
    float v = reduce_block(op, x, 0, 1, x.numel, true);
    if (threadIdx.x == 0) st(out, offset_of(out, 0), v);
}
