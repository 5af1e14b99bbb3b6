// RMSNorm forward and backward over the last dimension: one block per row; dweight by one thread per column
// (deterministic, no atomics).
#include "tally.cuh"

extern "C" __global__ void tally_rms_norm(const __grid_constant__ TDesc x, const __grid_constant__ TDesc w, double eps, const __grid_constant__ TDesc out, const __grid_constant__ TDesc rstd, int has_rstd, long long rows) {
    int n = last_dim(x);
    long long sx = last_stride(x), so = last_stride(out), sw = w.strides[0];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long xb = row_offset(x, r), ob = row_offset(out, r);
        float ss = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) { float v = ld(x, xb + j * sx); ss += v * v; }
        ss = block_reduce(ss, SumOp(), 0.f);
        float rs = (float) (1.0 / sqrt((double) ss / n + eps));  // saved at fp32, as the CPU reference
        for (int j = threadIdx.x; j < n; j += blockDim.x) st(out, ob + j * so, ld(x, xb + j * sx) * rs * ld(w, j * sw));
        if (has_rstd && threadIdx.x == 0) st(rstd, offset_of(rstd, r), rs);
        __syncthreads();
    }
}

// dx = r·(g − xhat·mean(g·xhat)) with xhat = x·r, g = dy·w
extern "C" __global__ void tally_rms_norm_backward(const __grid_constant__ TDesc x, const __grid_constant__ TDesc w, const __grid_constant__ TDesc rstd, const __grid_constant__ TDesc dy, const __grid_constant__ TDesc dx, long long rows) {
    int n = last_dim(x);
    long long sx = last_stride(x), sg = last_stride(dy), so = last_stride(dx), sw = w.strides[0];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long xb = row_offset(x, r), gb = row_offset(dy, r), ob = row_offset(dx, r);
        float rs = ld(rstd, offset_of(rstd, r));
        float dot = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) dot += ld(dy, gb + j * sg) * ld(w, j * sw) * ld(x, xb + j * sx) * rs;
        float mean = block_reduce(dot, SumOp(), 0.f) / n;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float xh = ld(x, xb + j * sx) * rs, g = ld(dy, gb + j * sg) * ld(w, j * sw);
            st(dx, ob + j * so, rs * (g - xh * mean));
        }
        __syncthreads();
    }
}

extern "C" __global__ void tally_rms_norm_dweight(const __grid_constant__ TDesc x, const __grid_constant__ TDesc rstd, const __grid_constant__ TDesc dy, const __grid_constant__ TDesc dw, long long rows) {
    int n = last_dim(x);
    long long sx = last_stride(x), sg = last_stride(dy);
    for (long long j = (long long) blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (long long) blockDim.x * gridDim.x) {
        float acc = 0.f;
        for (long long r = 0; r < rows; r++) {
            acc += ld(dy, row_offset(dy, r) + j * sg) * ld(x, row_offset(x, r) + j * sx) * ld(rstd, offset_of(rstd, r));
        }
        st(dw, j * dw.strides[0], acc);
    }
}
