// fill, copy/cast, unary (+ backward), binary, binary with scalar, axpby: one thread per output element, inputs
// indexed through their own strides (broadcast inputs arrive expanded to the output shape, stride 0).
#include "tally.cuh"

// Same order as dev.tally.engine.UnaryOp / BinaryOp.
enum { U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_SQUARE, U_RECIPROCAL, U_SIN, U_COS, U_TANH, U_SIGMOID, U_SILU,
       U_RELU, U_SIGN, U_ISFINITE };
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_POW, B_LOGADDEXP, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE };

TALLY_HD float sigmoidf(float x) {
    return x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
}

// sin/cos in fp64 through sinpi/cospi (the CPU computes in fp64 too): sinf/cosf's argument reduction has a slow path
// for |x| > 105615 that needs a stack frame in every kernel using it. x/π costs |x|·2^-53 rad, below fp32 resolution
// of the result for |x| < 2^29.
TALLY_HD float sin_f(float x) { return (float) sinpi((double) x * 0.31830988618379067154); }
TALLY_HD float cos_f(float x) { return (float) cospi((double) x * 0.31830988618379067154); }

TALLY_HD float unary_f(int op, float x) {
    switch (op) {
        case U_NEG: return -x;
        case U_ABS: return fabsf(x);
        case U_EXP: return expf(x);
        case U_LOG: return logf(x);
        case U_SQRT: return sqrtf(x);
        case U_RSQRT: return 1.f / sqrtf(x);
        case U_SQUARE: return x * x;
        case U_RECIPROCAL: return 1.f / x;
        case U_SIN: return sin_f(x);
        case U_COS: return cos_f(x);
        case U_TANH: return tanhf(x);
        case U_SIGMOID: return sigmoidf(x);
        case U_SILU: return x * sigmoidf(x);
        case U_RELU: return x > 0.f ? x : (x == x ? 0.f : x);
        case U_SIGN: return x > 0.f ? 1.f : x < 0.f ? -1.f : (x == x ? 0.f : x);
        default: return isfinite(x) ? 1.f : 0.f;
    }
}

TALLY_HD float unary_grad(int op, float x, float dy) {
    switch (op) {
        case U_NEG: return -dy;
        case U_ABS: return x > 0.f ? dy : x < 0.f ? -dy : 0.f;
        case U_EXP: return dy * expf(x);
        case U_LOG: return dy / x;
        case U_SQRT: return dy * 0.5f / sqrtf(x);
        case U_RSQRT: return dy * -0.5f / (x * sqrtf(x));
        case U_SQUARE: return dy * 2.f * x;
        case U_RECIPROCAL: return -dy / (x * x);
        case U_SIN: return dy * cos_f(x);
        case U_COS: return -dy * sin_f(x);
        case U_TANH: { float t = tanhf(x); return dy * (1.f - t * t); }
        case U_SIGMOID: { float s = sigmoidf(x); return dy * s * (1.f - s); }
        case U_SILU: { float s = sigmoidf(x); return dy * s * (1.f + x * (1.f - s)); }
        case U_RELU: return x > 0.f ? dy : 0.f;
        default: return 0.f;
    }
}

TALLY_HD float binary_f(int op, float a, float b) {
    switch (op) {
        case B_ADD: return a + b;
        case B_SUB: return a - b;
        case B_MUL: return a * b;
        case B_DIV: return a / b;
        case B_MAX: return (a != a || b != b) ? tally_nan() : fmaxf(a, b);
        case B_MIN: return (a != a || b != b) ? tally_nan() : fminf(a, b);
        case B_POW: return powf(a, b);
        case B_LOGADDEXP: {
            float m = fmaxf(a, b);
            if (a != a || b != b) return tally_nan();
            if (isinf(m)) return m;
            return m + log1pf(expf(-fabsf(a - b)));
        }
        case B_EQ: return a == b ? 1.f : 0.f;
        case B_NE: return a != b ? 1.f : 0.f;
        case B_LT: return a < b ? 1.f : 0.f;
        case B_LE: return a <= b ? 1.f : 0.f;
        case B_GT: return a > b ? 1.f : 0.f;
        default: return a >= b ? 1.f : 0.f;
    }
}

extern "C" __global__ void tally_fill(const __grid_constant__ TDesc out, double value) {
    bool integral = !is_floating(out.dtype);
    GRID_STRIDE(i, out.numel) {
        long long o = offset_of(out, i);
        if (integral) st_long(out, o, (long long) value); else st(out, o, (float) value);
    }
}

// dst = src (src expanded to dst's shape); integer → integer copies are exact, everything else goes through fp32.
extern "C" __global__ void tally_copy(const __grid_constant__ TDesc src, const __grid_constant__ TDesc dst) {
    bool ints = !is_floating(src.dtype) && !is_floating(dst.dtype);
    GRID_STRIDE(i, dst.numel) {
        long long so = offset_of(src, i), d = offset_of(dst, i);
        if (ints) st_long(dst, d, ld_long(src, so));
        else st(dst, d, ld(src, so));
    }
}

extern "C" __global__ void tally_unary(int op, const __grid_constant__ TDesc x, const __grid_constant__ TDesc out) {
    GRID_STRIDE(i, out.numel) st(out, offset_of(out, i), unary_f(op, ld(x, offset_of(x, i))));
}

extern "C" __global__ void tally_unary_backward(int op, const __grid_constant__ TDesc x, const __grid_constant__ TDesc dy, const __grid_constant__ TDesc dx) {
    GRID_STRIDE(i, dx.numel) {
        st(dx, offset_of(dx, i), unary_grad(op, ld(x, offset_of(x, i)), ld(dy, offset_of(dy, i))));
    }
}

extern "C" __global__ void tally_binary(int op, const __grid_constant__ TDesc a, const __grid_constant__ TDesc b, const __grid_constant__ TDesc out) {
    GRID_STRIDE(i, out.numel) {
        st(out, offset_of(out, i), binary_f(op, ld(a, offset_of(a, i)), ld(b, offset_of(b, i))));
    }
}

extern "C" __global__ void tally_binary_scalar(int op, const __grid_constant__ TDesc a, double s, const __grid_constant__ TDesc out) {
    float sf = (float) s;
    GRID_STRIDE(i, out.numel) st(out, offset_of(out, i), binary_f(op, ld(a, offset_of(a, i)), sf));
}

// A zero coefficient drops its term entirely (NaN/inf there do not leak, as in BLAS and the CPU reference).
extern "C" __global__ void tally_axpby(double alpha, const __grid_constant__ TDesc x, double beta, const __grid_constant__ TDesc y, const __grid_constant__ TDesc out) {
    GRID_STRIDE(i, out.numel) {
        double v = 0.0;  // fp64 like the CPU reference: optimizer coefficients such as 1 - 1e-8 survive
        if (alpha != 0.0) v += alpha * (double) ld(x, offset_of(x, i));
        if (beta != 0.0) v += beta * (double) ld(y, offset_of(y, i));
        st(out, offset_of(out, i), (float) v);
    }
}

// out = cond != 0 ? a : b (all expanded to out's shape); the unselected side is never read into the result.
extern "C" __global__ void tally_where(const __grid_constant__ TDesc cond, const __grid_constant__ TDesc a, const __grid_constant__ TDesc b, const __grid_constant__ TDesc out) {
    bool ints = !is_floating(out.dtype);
    GRID_STRIDE(i, out.numel) {
        bool pick = ld(cond, offset_of(cond, i)) != 0.f;
        const TDesc& src = pick ? a : b;
        long long so = offset_of(src, i), o = offset_of(out, i);
        if (ints) st_long(out, o, ld_long(src, so)); else st(out, o, ld(src, so));
    }
}
