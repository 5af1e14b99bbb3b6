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

// Asymmetric per-group quantization (Q-GaLore's int8 weights, 4-bit projections), in float32 like the CPU reference.
// Pass 1: one CUDA block per group finds min/max and writes s and z. Pass 2: one thread per code byte (two elements
// when 4-bit codes share a byte, so no two threads write the same byte).
extern "C" __global__ void tally_group_scales(const __grid_constant__ TDesc x, const __grid_constant__ TDesc scales, const __grid_constant__ TDesc zeros, long long group, int levels) {
    long long n = x.numel, groups = (n + group - 1) / group;
    for (long long g = blockIdx.x; g < groups; g += gridDim.x) {
        long long start = g * group, end = min(n, start + group);
        float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);
        for (long long i = start + threadIdx.x; i < end; i += blockDim.x) {
            float v = ld(x, offset_of(x, i));
            mn = NanMinOp()(mn, v);
            mx = NanMaxOp()(mx, v);
        }
        mn = block_reduce(mn, NanMinOp(), __int_as_float(0x7f800000));
        mx = block_reduce(mx, NanMaxOp(), __int_as_float(0xff800000));
        if (threadIdx.x == 0) {
            float s = __fdiv_rn(fmaxf(__fsub_rn(mx, mn), 1e-5f), (float) levels);
            float z = -rintf(__fdiv_rn(mn, s));
            z = z < 0.f ? 0.f : z > (float) levels ? (float) levels : z;
            st(scales, offset_of(scales, g), s);
            st(zeros, offset_of(zeros, g), z);
        }
        __syncthreads();
    }
}

// mode 0: round half to even; 1: stochastic with Philox (seed, offset) as Ops.random's UNIFORM stream; 2: stochastic with r
__device__ __forceinline__ int group_code(const TDesc& x, const TDesc& r, const TDesc& scales, const TDesc& zeros, long long i, long long group, int levels,
                                          int mode, unsigned long long seed, unsigned long long offset) {
    float s = ld(scales, offset_of(scales, i / group)), z = ld(zeros, offset_of(zeros, i / group));
    float u = __fdiv_rn(ld(x, offset_of(x, i)), s), q;
    if (mode == 0) {
        q = rintf(u);
    } else {
        float fl = floorf(u), frac = __fsub_rn(u, fl);
        bool up;
        if (mode == 2) {
            up = ld(r, offset_of(r, i)) < frac;
        } else {
            unsigned long long ctr = offset + (unsigned long long) (i / 4);
            unsigned c[4] = {(unsigned) ctr, (unsigned) (ctr >> 32), 0u, 0u};
            philox(c, (unsigned) seed, (unsigned) (seed >> 32));
            // Select the lane with constant indices: c[i & 3] would put c in local memory (a stack frame).
            int lane = (int) (i & 3);
            unsigned word = lane == 0 ? c[0] : lane == 1 ? c[1] : lane == 2 ? c[2] : c[3];
            up = uniform01(word) < (double) frac;
        }
        q = up ? ceilf(u) : fl;
    }
    q = __fadd_rn(q, z);
    q = q < 0.f ? 0.f : q > (float) levels ? (float) levels : q;
    return (int) q;
}

extern "C" __global__ void tally_group_codes(const __grid_constant__ TDesc x, const __grid_constant__ TDesc r, const __grid_constant__ TDesc codes, const __grid_constant__ TDesc scales, const __grid_constant__ TDesc zeros, long long group, int bits,
                                             int mode, unsigned long long seed, unsigned long long offset) {
    int levels = (1 << bits) - 1;
    long long n = x.numel;
    if (bits == 8) {
        GRID_STRIDE(i, n) st_long(codes, offset_of(codes, i), group_code(x, r, scales, zeros, i, group, levels, mode, seed, offset));
    } else {
        GRID_STRIDE(j, (n + 1) / 2) {
            int lo = group_code(x, r, scales, zeros, 2 * j, group, levels, mode, seed, offset);
            int hi = 2 * j + 1 < n ? group_code(x, r, scales, zeros, 2 * j + 1, group, levels, mode, seed, offset) : 0;
            st_long(codes, offset_of(codes, j), lo | (hi << 4));
        }
    }
}

extern "C" __global__ void tally_group_dequantize(const __grid_constant__ TDesc codes, const __grid_constant__ TDesc scales, const __grid_constant__ TDesc zeros, const __grid_constant__ TDesc out, long long group, int bits) {
    GRID_STRIDE(i, out.numel) {
        int code;
        if (bits == 8) code = (int) ld_long(codes, offset_of(codes, i));
        else {
            int b = (int) ld_long(codes, offset_of(codes, i / 2));
            code = (i & 1) == 0 ? (b & 0x0F) : ((b >> 4) & 0x0F);
        }
        float s = ld(scales, offset_of(scales, i / group)), z = ld(zeros, offset_of(zeros, i / group));
        st(out, offset_of(out, i), __fmul_rn(__fsub_rn((float) code, z), s));
    }
}
