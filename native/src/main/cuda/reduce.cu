// Reductions. The host moves the reduced dimension last (a permuted view), so reduce-along-dim is a row reduction:
// one block per output element. reduceAll is two-stage: up to REDUCE_ALL_MAX_BLOCKS blocks each reduce a fixed
// grid-stride share of the elements into a partial state, then one block combines the partials in block order
// (deterministic: the partition depends only on the element count).
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

// ---- reduceAll: per-thread state, combined pairwise; host-callable, so the host check runs the same arithmetic ----

#define REDUCE_ALL_MAX_BLOCKS 1024

// a: the running sum / extreme / (logsumexp) maximum; b: logsumexp's Σ exp(x − a), unused otherwise.
struct RedState { float a, b; };

TALLY_HD RedState red_init(int op) {
    switch (op) {
        case R_MAX: case R_LOGSUMEXP: return {-INFINITY, 0.f};
        case R_MIN: return {INFINITY, 0.f};
        default: return {0.f, 0.f}; // sums; MAX_ABS starts at 0 (|x| ≥ 0)
    }
}

TALLY_HD float nan_max(float a, float b) { return (a != a || b != b) ? tally_nan() : fmaxf(a, b); }
TALLY_HD float nan_min(float a, float b) { return (a != a || b != b) ? tally_nan() : fminf(a, b); }

// Adds one element. logsumexp is online: when a new maximum arrives the running sum is rescaled.
TALLY_HD RedState red_acc(int op, RedState s, float v) {
    switch (op) {
        case R_MAX: return {nan_max(s.a, v), 0.f};
        case R_MIN: return {nan_min(s.a, v), 0.f};
        case R_MAX_ABS: return {nan_max(s.a, fabsf(v)), 0.f};
        case R_SUM_SQUARES: case R_NORM2: return {s.a + v * v, 0.f};
        case R_LOGSUMEXP:
            if (v != v || s.a != s.a) return {tally_nan(), 0.f};
            if (v == -INFINITY) return s;                      // exp(−inf) adds nothing
            if (v > s.a) return {v, s.b * expf(s.a - v) + 1.f}; // s.a = −inf: s.b is 0
            return {s.a, s.b + expf(v - s.a)};                  // s.a = +inf gives NaN in b; red_finish returns a
        default: return {s.a + v, 0.f};
    }
}

TALLY_HD RedState red_combine(int op, RedState x, RedState y) {
    switch (op) {
        case R_MAX: case R_MAX_ABS: return {nan_max(x.a, y.a), 0.f};
        case R_MIN: return {nan_min(x.a, y.a), 0.f};
        case R_LOGSUMEXP: {
            if (x.a != x.a || y.a != y.a) return {tally_nan(), 0.f};
            float m = fmaxf(x.a, y.a);
            if (m == -INFINITY) return {m, 0.f};
            if (isinf(m)) return {m, 1.f};
            return {m, x.b * expf(x.a - m) + y.b * expf(y.a - m)};
        }
        default: return {x.a + y.a, 0.f};
    }
}

TALLY_HD float red_finish(int op, RedState s, long long n) {
    switch (op) {
        case R_MEAN: return s.a / (float) n;
        case R_NORM2: return sqrtf(s.a);
        case R_LOGSUMEXP: return (s.a != s.a || isinf(s.a)) ? s.a : s.a + logf(s.b);
        default: return s.a;
    }
}

// The state combined over the block (valid in thread 0); blockDim.x a multiple of 32.
__device__ RedState block_combine(int op, RedState v) {
    __shared__ RedState part[32];
    for (int o = 16; o > 0; o >>= 1) {
        RedState w = {__shfl_xor_sync(0xffffffffu, v.a, o), __shfl_xor_sync(0xffffffffu, v.b, o)};
        v = red_combine(op, v, w);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : red_init(op);
        for (int o = 16; o > 0; o >>= 1) {
            RedState w = {__shfl_xor_sync(0xffffffffu, v.a, o), __shfl_xor_sync(0xffffffffu, v.b, o)};
            v = red_combine(op, v, w);
        }
    }
    return v;
}

// Stage 1: block b reduces elements b·blockDim + t, stepping by gridDim·blockDim, into partials[b] (2 floats each).
extern "C" __global__ void tally_reduce_all_partial(int op, const __grid_constant__ TDesc x, float* partials) {
    RedState s = red_init(op);
    GRID_STRIDE(i, x.numel) s = red_acc(op, s, ld(x, offset_of(x, i)));
    s = block_combine(op, s);
    if (threadIdx.x == 0) {
        partials[2 * blockIdx.x] = s.a;
        partials[2 * blockIdx.x + 1] = s.b;
    }
}

// Stage 2: one block combines the partials of stage 1 and writes the result.
extern "C" __global__ void tally_reduce_all_finish(int op, const float* partials, int count, long long n,
                                                   const __grid_constant__ TDesc out) {
    RedState s = red_init(op);
    for (int b = threadIdx.x; b < count; b += blockDim.x) s = red_combine(op, s, RedState{partials[2 * b], partials[2 * b + 1]});
    s = block_combine(op, s);
    if (threadIdx.x == 0) st(out, offset_of(out, 0), red_finish(op, s, n));
}
