// bitsandbytes-style block-wise dynamic 8-bit quantization: one CUDA block per quantization block (absmax by block
// reduction, then each element's nearest code by the same binary search as the CPU reference).
#include "tally.cuh"

__device__ int nearest_code(const float* code, float x, bool is_signed) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = is_signed ? -1.f : 0.f, upper = 1.f;
    float val = code[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) { lower_pivot = pivot; lower = val; pivot += i; }
        else { upper_pivot = pivot; upper = val; pivot -= i; }
        val = code[pivot];
    }
    if (x > val) {
        float mid = (upper + val) * 0.5f;
        return x > mid ? upper_pivot : pivot;
    } else {
        float mid = (lower + val) * 0.5f;
        return x < mid ? lower_pivot : pivot;
    }
}

extern "C" __global__ void tally_quantize_blockwise(const __grid_constant__ TDesc x, const __grid_constant__ TDesc code, const __grid_constant__ TDesc absmax, const __grid_constant__ TDesc q, int block_size, int is_signed) {
    __shared__ float c[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) c[i] = ld(code, offset_of(code, i));
    long long n = x.numel, blocks = (n + block_size - 1) / block_size;
    for (long long blk = blockIdx.x; blk < blocks; blk += gridDim.x) {
        long long start = blk * block_size, end = min(n, start + block_size);
        float amax = 0.f;
        for (long long i = start + threadIdx.x; i < end; i += blockDim.x) amax = NanMaxOp()(amax, fabsf(ld(x, offset_of(x, i))));
        amax = block_reduce(amax, NanMaxOp(), 0.f);
        if (threadIdx.x == 0) st(absmax, offset_of(absmax, blk), amax);
        for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {
            float v = ld(x, offset_of(x, i));
            float xn = amax == 0.f ? 0.f : v / amax;
            int idx = nearest_code(c, xn, is_signed);
            if (is_signed && ((signbit(c[idx]) != 0) != (signbit(v) != 0))) {
                idx += v > 0.f ? 1 : -1;
                idx = max(0, min(255, idx));
            }
            st_long(q, offset_of(q, i), idx);
        }
        __syncthreads();
    }
}

extern "C" __global__ void tally_dequantize_blockwise(const __grid_constant__ TDesc q, const __grid_constant__ TDesc code, const __grid_constant__ TDesc absmax, const __grid_constant__ TDesc out, int block_size) {
    GRID_STRIDE(i, out.numel) {
        long long k = ld_long(q, offset_of(q, i));
        float amax = ld(absmax, offset_of(absmax, i / block_size));
        st(out, offset_of(out, i), ld(code, offset_of(code, k)) * amax);
    }
}
