// Shared by every kernel file: the tensor descriptor passed by value to each kernel, strided element access and
// dtype conversion. All arithmetic happens in fp32 (or fp64 where the CPU reference needs it); bf16/f16 are storage.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stddef.h>

#define TALLY_MAX_RANK 8

// Same order as dev.tally.engine.DType (its ordinal() is what the host passes).
enum TallyDType { DT_F32 = 0, DT_BF16 = 1, DT_F16 = 2, DT_I8 = 3, DT_U8 = 4, DT_I32 = 5, DT_I64 = 6 };

// A strided view: base already includes the view's offset. 120 bytes, laid out identically by CudaKernels.Desc.
struct TDesc {
    char* base;
    int dtype;
    int rank;
    long long numel;
    int dims[TALLY_MAX_RANK];
    long long strides[TALLY_MAX_RANK];
};

// The host writes this struct byte by byte (KernelArg.Desc): keep the two in step.
static_assert(sizeof(TDesc) == 120, "TDesc layout changed: update KernelArg.Desc");
static_assert(offsetof(TDesc, numel) == 16 && offsetof(TDesc, dims) == 24 && offsetof(TDesc, strides) == 56,
              "TDesc layout changed: update KernelArg.Desc");

// Pure index/bit arithmetic is also compiled for the host, where a test checks it without a GPU.
#define TALLY_HD __host__ __device__ __forceinline__

TALLY_HD float tally_nan() { return nanf(""); }

// Element offset (in elements) of row-major flat index i.
TALLY_HD long long offset_of(const TDesc& t, long long i) {
    // the host coalesces elementwise launches, so contiguous views arrive as rank 1: no 64-bit divisions
    if (t.rank == 1) return i * t.strides[0];
    long long off = 0;
    for (int d = t.rank - 1; d >= 0; --d) {
        int n = t.dims[d];
        off += (i % n) * t.strides[d];
        i /= n;
    }
    return off;
}

// Offset of element (row r, column 0) when the tensor is seen as rows over its last dimension.
TALLY_HD long long row_offset(const TDesc& t, long long r) {
    long long off = 0;
    for (int d = t.rank - 2; d >= 0; --d) {
        int n = t.dims[d];
        off += (r % n) * t.strides[d];
        r /= n;
    }
    return off;
}

TALLY_HD long long last_stride(const TDesc& t) { return t.rank == 0 ? 1 : t.strides[t.rank - 1]; }
TALLY_HD int last_dim(const TDesc& t) { return t.rank == 0 ? 1 : t.dims[t.rank - 1]; }

// Loads and stores are host-callable too: the host check runs kernel bodies' per-thread work on host buffers.
TALLY_HD float ld(const TDesc& t, long long off) {
    switch (t.dtype) {
        case DT_F32: return reinterpret_cast<const float*>(t.base)[off];
        case DT_BF16: return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(t.base)[off]);
        case DT_F16: return __half2float(reinterpret_cast<const __half*>(t.base)[off]);
        case DT_I8: return (float) reinterpret_cast<const signed char*>(t.base)[off];
        case DT_U8: return (float) reinterpret_cast<const unsigned char*>(t.base)[off];
        case DT_I32: return (float) reinterpret_cast<const int*>(t.base)[off];
        default: return (float) reinterpret_cast<const long long*>(t.base)[off];
    }
}

TALLY_HD long long ld_long(const TDesc& t, long long off) {
    switch (t.dtype) {
        case DT_I64: return reinterpret_cast<const long long*>(t.base)[off];
        case DT_I32: return reinterpret_cast<const int*>(t.base)[off];
        case DT_I8: return reinterpret_cast<const signed char*>(t.base)[off];
        case DT_U8: return reinterpret_cast<const unsigned char*>(t.base)[off];
        default: return (long long) ld(t, off);
    }
}

// Float → storage dtype, as the CPU backend: bf16/f16 round to nearest even; I8/U8 round to nearest (even), wrapping
// like Java's (byte) cast; I32/I64 truncate toward zero. (On the device a C cast from float is cvt.rzi: saturating,
// NaN → 0, the same as __float2int_rz; rintf then a cast is __float2int_rn. Plain C keeps this host-callable.)
TALLY_HD void st(const TDesc& t, long long off, float v) {
    switch (t.dtype) {
        case DT_F32: reinterpret_cast<float*>(t.base)[off] = v; break;
        case DT_BF16: reinterpret_cast<__nv_bfloat16*>(t.base)[off] = __float2bfloat16_rn(v); break;
        case DT_F16: reinterpret_cast<__half*>(t.base)[off] = __float2half_rn(v); break;
        case DT_I8: reinterpret_cast<signed char*>(t.base)[off] = (signed char) (int) rintf(v); break;
        case DT_U8: reinterpret_cast<unsigned char*>(t.base)[off] = (unsigned char) (int) rintf(v); break;
        case DT_I32: reinterpret_cast<int*>(t.base)[off] = (int) v; break;
        default: reinterpret_cast<long long*>(t.base)[off] = (long long) v; break;
    }
}

TALLY_HD void st_long(const TDesc& t, long long off, long long v) {
    switch (t.dtype) {
        case DT_I64: reinterpret_cast<long long*>(t.base)[off] = v; break;
        case DT_I32: reinterpret_cast<int*>(t.base)[off] = (int) v; break;
        case DT_I8: reinterpret_cast<signed char*>(t.base)[off] = (signed char) v; break;
        case DT_U8: reinterpret_cast<unsigned char*>(t.base)[off] = (unsigned char) v; break;
        default: st(t, off, (float) v); break;
    }
}

TALLY_HD bool is_floating(int dtype) { return dtype <= DT_F16; }

// The fp64 path, used whenever an integer tensor takes part (the CPU computes everything in fp64): integers load
// exactly (I64 up to 2^53, as on the CPU), and stores follow Java's casts: double → long truncates toward zero,
// saturates, NaN → 0; narrower integers then wrap.
TALLY_HD double ld_d(const TDesc& t, long long off) {
    return is_floating(t.dtype) ? (double) ld(t, off) : (double) ld_long(t, off);
}

TALLY_HD long long java_d2l(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return 9223372036854775807LL;
    if (v <= -9223372036854775808.0) return (-9223372036854775807LL - 1);
    return (long long) v;
}

TALLY_HD void st_d(const TDesc& t, long long off, double v) {
    if (is_floating(t.dtype)) st(t, off, (float) v);
    else st_long(t, off, java_d2l(v));
}

// atomic table[off] += v for the floating storage types (bf16 atomics need sm_80, the oldest target).
__device__ __forceinline__ void atomic_add(const TDesc& t, long long off, float v) {
    switch (t.dtype) {
        case DT_F32: atomicAdd(reinterpret_cast<float*>(t.base) + off, v); break;
        case DT_BF16: atomicAdd(reinterpret_cast<__nv_bfloat16*>(t.base) + off, __float2bfloat16_rn(v)); break;
        default: atomicAdd(reinterpret_cast<__half*>(t.base) + off, __float2half_rn(v)); break;
    }
}

#define GRID_STRIDE(i, n) for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                               i += (long long) blockDim.x * gridDim.x)

// Errors a kernel cannot throw (an id out of range) go to a device word the host checks at the next synchronize:
// flag[0] = the launch's code (nonzero, given by the host; the first report wins: kernels on one stream run in order),
// flag[1] = the offending value.
__device__ __forceinline__ void report_error(long long* flag, long long code, long long value) {
    if (atomicCAS(reinterpret_cast<unsigned long long*>(flag), 0ull, (unsigned long long) code) == 0ull) {
        flag[1] = value;
    }
}

// Block-wide reductions (blockDim.x a multiple of 32, at most 1024).
template <typename T, typename F>
__device__ __forceinline__ T block_reduce(T v, F op, T identity) {
    __shared__ T warp_part[32];
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) warp_part[warp] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = threadIdx.x < nw ? warp_part[threadIdx.x] : identity;
    if (warp == 0) for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    __shared__ T result;
    if (threadIdx.x == 0) result = v;
    __syncthreads();
    return result;
}

struct SumOp { template <typename T> __device__ T operator()(T a, T b) const { return a + b; } };
// max that lets NaN win (as the CPU reference does)
struct NanMaxOp { __device__ float operator()(float a, float b) const { return (a != a || b != b) ? __int_as_float(0x7fc00000) : fmaxf(a, b); } };
struct NanMinOp { __device__ float operator()(float a, float b) const { return (a != a || b != b) ? __int_as_float(0x7fc00000) : fminf(a, b); } };
