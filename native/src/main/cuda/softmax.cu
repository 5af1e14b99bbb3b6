// softmax (optionally causal), log-softmax and softmax backward over the last dimension: one block per row.
#include "tally.cuh"

// causal: x's last two dims are (R, C); element j of row i is kept when j <= i + (C − R).
// Rows up to this many elements stay in shared memory between the passes (one read, one write of global memory);
// each thread caches exactly the columns it visits in every pass, so no extra barrier is needed.
#define SOFTMAX_CACHE 8192

extern "C" __global__ void tally_softmax(const __grid_constant__ TDesc x, const __grid_constant__ TDesc out, int causal, long long rows) {
    __shared__ float cache[SOFTMAX_CACHE];
    int n = last_dim(x);
    bool cached = n <= SOFTMAX_CACHE;
    int r_dim = x.rank >= 2 ? x.dims[x.rank - 2] : 1;
    long long sx = last_stride(x), so = last_stride(out);
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long xb = row_offset(x, r), ob = row_offset(out, r);
        long long keepl = causal ? (r % r_dim) + (n - r_dim) + 1 : n;
        int keep = (int) (keepl < 0 ? 0 : keepl > n ? n : keepl);
        float m = -INFINITY;
        for (int j = threadIdx.x; j < keep; j += blockDim.x) {
            float v = ld(x, xb + j * sx);
            if (cached) cache[j] = v;
            m = NanMaxOp()(m, v);
        }
        m = block_reduce(m, NanMaxOp(), -INFINITY);
        if (m == -INFINITY) m = 0.f;  // every kept input is -inf: 0/0 gives NaN, as in PyTorch and the CPU reference
        float s = 0.f;
        for (int j = threadIdx.x; j < keep; j += blockDim.x) {
            float e = expf((cached ? cache[j] : ld(x, xb + j * sx)) - m);
            if (cached) cache[j] = e;
            s += e;
        }
        s = block_reduce(s, SumOp(), 0.f);
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float e = j < keep ? (cached ? cache[j] : expf(ld(x, xb + j * sx) - m)) / s : 0.f;  // nothing kept: all 0
            st(out, ob + j * so, e);
        }
        __syncthreads();
    }
}

extern "C" __global__ void tally_log_softmax(const __grid_constant__ TDesc x, const __grid_constant__ TDesc out, long long rows) {
    int n = last_dim(x);
    long long sx = last_stride(x), so = last_stride(out);
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long xb = row_offset(x, r), ob = row_offset(out, r);
        float m = -INFINITY;
        for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, ld(x, xb + j * sx));
        m = block_reduce(m, NanMaxOp(), -INFINITY);
        if (isinf(m)) m = 0.f;
        float s = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) s += expf(ld(x, xb + j * sx) - m);
        float lse = m + logf(block_reduce(s, SumOp(), 0.f));
        for (int j = threadIdx.x; j < n; j += blockDim.x) st(out, ob + j * so, ld(x, xb + j * sx) - lse);
        __syncthreads();
    }
}

extern "C" __global__ void tally_softmax_backward(const __grid_constant__ TDesc y, const __grid_constant__ TDesc dy, const __grid_constant__ TDesc dx, long long rows) {
    int n = last_dim(y);
    long long sy = last_stride(y), sg = last_stride(dy), so = last_stride(dx);
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long yb = row_offset(y, r), gb = row_offset(dy, r), ob = row_offset(dx, r);
        float dot = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) dot += ld(y, yb + j * sy) * ld(dy, gb + j * sg);
        dot = block_reduce(dot, SumOp(), 0.f);
        for (int j = threadIdx.x; j < n; j += blockDim.x) st(dx, ob + j * so, ld(y, yb + j * sy) * (ld(dy, gb + j * sg) - dot));
        __syncthreads();
    }
}
