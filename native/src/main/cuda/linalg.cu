// Strided batched GEMM for the operands cuBLAS cannot take as they are (no unit stride in either matrix dim, mixed
// dtypes, a transposed output): 16×16 shared-memory tiles, fp32 accumulation. a [B…, m, k], b [B…, k, n] arrive
// expanded to out's batch dims; blockIdx.z is the flat batch index.
#include "tally.cuh"

#define TILE 16

__device__ __forceinline__ long long batch_offset(const TDesc& t, long long b) {
    long long off = 0;
    for (int d = t.rank - 3; d >= 0; --d) {
        int n = t.dims[d];
        off += (b % n) * t.strides[d];
        b /= n;
    }
    return off;
}

// The grid covers (column tiles, row tiles, batches) as far as CUDA allows (y and z at most 65,535): blocks step over
// the remaining row tiles and batches, so m > 1,048,560 rows or more than 65,535 batches still run.
extern "C" __global__ void tally_gemm_strided(const __grid_constant__ TDesc a, const __grid_constant__ TDesc b,
                                              const __grid_constant__ TDesc out, float alpha, float beta) {
    __shared__ float as[TILE][TILE + 1], bs[TILE][TILE + 1];
    int m = out.dims[out.rank - 2], n = out.dims[out.rank - 1], k = a.dims[a.rank - 1];
    long long batches = 1;
    for (int d = 0; d < out.rank - 2; d++) batches *= out.dims[d];
    long long am = a.strides[a.rank - 2], ak = a.strides[a.rank - 1];
    long long bk = b.strides[b.rank - 2], bn = b.strides[b.rank - 1];
    long long om = out.strides[out.rank - 2], on = out.strides[out.rank - 1];
    int col = blockIdx.x * TILE + threadIdx.x;
    for (long long bat = blockIdx.z; bat < batches; bat += gridDim.z) {
        long long ab = batch_offset(a, bat), bb = batch_offset(b, bat), ob = batch_offset(out, bat);
        for (long long rt = blockIdx.y; rt * TILE < m; rt += gridDim.y) { // uniform per block: __syncthreads is safe
            long long row = rt * TILE + threadIdx.y;
            float acc = 0.f;
            for (int t = 0; t < k; t += TILE) {
                int ka = t + threadIdx.x, kb = t + threadIdx.y;
                as[threadIdx.y][threadIdx.x] = (row < m && ka < k) ? ld(a, ab + row * am + ka * ak) : 0.f;
                bs[threadIdx.y][threadIdx.x] = (kb < k && col < n) ? ld(b, bb + kb * bk + col * bn) : 0.f;
                __syncthreads();
                for (int j = 0; j < TILE; j++) acc += as[threadIdx.y][j] * bs[j][threadIdx.x];
                __syncthreads();
            }
            if (row < m && col < n) {
                long long o = ob + row * om + col * on;
                float v = alpha * acc;
                if (beta != 0.f) v += beta * ld(out, o);  // beta = 0 ignores out's old contents, NaN included
                st(out, o, v);
            }
        }
    }
}
