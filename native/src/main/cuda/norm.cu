// RMSNorm forward and backward over the last dimension: one block per row. dweight is two-stage and deterministic (no
// atomics): the rows are cut into `chunks` fixed row ranges, a thread per (column, chunk) sums its range into a
// partial, and a second kernel sums each column's partials in chunk order.
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

// Rows [lo, hi) of chunk c of `chunks` (equal shares, the first rows % chunks one row longer).
TALLY_HD void chunk_rows(long long rows, int chunks, int c, long long* lo, long long* hi) {
    long long q = rows / chunks, r = rows % chunks;
    *lo = c * q + (c < r ? c : r);
    *hi = *lo + q + (c < r ? 1 : 0);
}

// Σ over rows [lo, hi) of dy·x·rstd in column j: one thread's work in stage 1 (host-callable for the host check).
TALLY_HD float dweight_partial(const TDesc& x, const TDesc& rstd, const TDesc& dy, long long j, long long lo, long long hi) {
    long long sx = last_stride(x), sg = last_stride(dy);
    float acc = 0.f;
    for (long long r = lo; r < hi; r++) {
        acc += ld(dy, row_offset(dy, r) + j * sg) * ld(x, row_offset(x, r) + j * sx) * ld(rstd, offset_of(rstd, r));
    }
    return acc;
}

// Stage 2's sum for column j: the partials of every chunk, in chunk order.
TALLY_HD float dweight_total(const float* partials, int chunks, long long n, long long j) {
    float acc = 0.f;
    for (int c = 0; c < chunks; c++) acc += partials[c * n + j];
    return acc;
}

// Stage 1: grid (column blocks, chunks). With one chunk the sum is final and goes straight to dw (no stage 2).
extern "C" __global__ void tally_rms_norm_dweight_partial(const __grid_constant__ TDesc x, const __grid_constant__ TDesc rstd,
                                                          const __grid_constant__ TDesc dy, const __grid_constant__ TDesc dw,
                                                          float* partials, long long rows, int chunks) {
    long long n = last_dim(x);
    long long lo, hi;
    chunk_rows(rows, chunks, blockIdx.y, &lo, &hi);
    for (long long j = (long long) blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (long long) blockDim.x * gridDim.x) {
        float acc = dweight_partial(x, rstd, dy, j, lo, hi);
        if (chunks == 1) st(dw, j * dw.strides[0], acc);
        else partials[blockIdx.y * n + j] = acc;
    }
}

extern "C" __global__ void tally_rms_norm_dweight_finish(const float* partials, int chunks, const __grid_constant__ TDesc dw) {
    long long n = dw.dims[0];
    GRID_STRIDE(j, n) st(dw, j * dw.strides[0], dweight_total(partials, chunks, n, j));
}
