// fill, copy/cast, unary (+ backward), binary, binary with scalar, axpby: one thread per output element, inputs
// indexed through their own strides (broadcast inputs arrive expanded to the output shape, stride 0).
#include "tally.cuh"

// Same order as dev.tally.engine.UnaryOp / BinaryOp.
enum { U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_SQUARE, U_RECIPROCAL, U_SIN, U_COS, U_TANH, U_SIGMOID, U_SILU,
       U_RELU, U_SIGN, U_ISFINITE };
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_POW, B_LOGADDEXP, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE };

// The math of each precision: fp32 for floating tensors, fp64 when an integer tensor takes part (see ld_d).
template <typename T> struct M;
template <> struct M<float> {
    static TALLY_HD float exp(float x) { return expf(x); }
    static TALLY_HD float log(float x) { return logf(x); }
    static TALLY_HD float log1p(float x) { return log1pf(x); }
    static TALLY_HD float sqrt(float x) { return sqrtf(x); }
    static TALLY_HD float tanh(float x) { return tanhf(x); }
    static TALLY_HD float abs(float x) { return fabsf(x); }
    static TALLY_HD float max(float a, float b) { return fmaxf(a, b); }
    static TALLY_HD float min(float a, float b) { return fminf(a, b); }
    static TALLY_HD float pow(float a, float b) { return powf(a, b); }
};
template <> struct M<double> {
    static TALLY_HD double exp(double x) { return ::exp(x); }
    static TALLY_HD double log(double x) { return ::log(x); }
    static TALLY_HD double log1p(double x) { return ::log1p(x); }
    static TALLY_HD double sqrt(double x) { return ::sqrt(x); }
    static TALLY_HD double tanh(double x) { return ::tanh(x); }
    static TALLY_HD double abs(double x) { return ::fabs(x); }
    static TALLY_HD double max(double a, double b) { return ::fmax(a, b); }
    static TALLY_HD double min(double a, double b) { return ::fmin(a, b); }
    static TALLY_HD double pow(double a, double b) { return ::pow(a, b); }
};

template <typename T> TALLY_HD T sigmoid_t(T x) {
    return x >= T(0) ? T(1) / (T(1) + M<T>::exp(-x)) : M<T>::exp(x) / (T(1) + M<T>::exp(x));
}
TALLY_HD float sigmoidf(float x) { return sigmoid_t(x); }

// sin/cos in fp64 through sinpi/cospi (the CPU computes in fp64 too): sinf/cosf's argument reduction has a slow path
// for |x| > 105615 that needs a stack frame in every kernel using it. x/π costs |x|·2^-53 rad, below fp32 resolution
// of the result for |x| < 2^29.
TALLY_HD double sin_d(double x) { return sinpi(x * 0.31830988618379067154); }
TALLY_HD double cos_d(double x) { return cospi(x * 0.31830988618379067154); }
TALLY_HD float sin_f(float x) { return (float) sin_d(x); }
TALLY_HD float cos_f(float x) { return (float) cos_d(x); }

template <typename T> TALLY_HD T unary_t(int op, T x) {
    switch (op) {
        case U_NEG: return -x;
        case U_ABS: return M<T>::abs(x);
        case U_EXP: return M<T>::exp(x);
        case U_LOG: return M<T>::log(x);
        case U_SQRT: return M<T>::sqrt(x);
        case U_RSQRT: return T(1) / M<T>::sqrt(x);
        case U_SQUARE: return x * x;
        case U_RECIPROCAL: return T(1) / x;
        case U_SIN: return (T) sin_d(x);
        case U_COS: return (T) cos_d(x);
        case U_TANH: return M<T>::tanh(x);
        case U_SIGMOID: return sigmoid_t(x);
        case U_SILU: return x * sigmoid_t(x);
        case U_RELU: return x > T(0) ? x : (x == x ? T(0) : x);
        case U_SIGN: return x > T(0) ? T(1) : x < T(0) ? T(-1) : (x == x ? T(0) : x);
        default: return isfinite(x) ? T(1) : T(0);
    }
}
TALLY_HD float unary_f(int op, float x) { return unary_t(op, x); }

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

template <typename T> TALLY_HD T binary_t(int op, T a, T b) {
    const T nan = T(tally_nan());
    switch (op) {
        case B_ADD: return a + b;
        case B_SUB: return a - b;
        case B_MUL: return a * b;
        case B_DIV: return a / b;
        case B_MAX: return (a != a || b != b) ? nan : M<T>::max(a, b);
        case B_MIN: return (a != a || b != b) ? nan : M<T>::min(a, b);
        case B_POW: return M<T>::pow(a, b);
        case B_LOGADDEXP: {
            T m = M<T>::max(a, b);
            if (a != a || b != b) return nan;
            if (isinf(m)) return m;
            return m + M<T>::log1p(M<T>::exp(-M<T>::abs(a - b)));
        }
        case B_EQ: return a == b ? T(1) : T(0);
        case B_NE: return a != b ? T(1) : T(0);
        case B_LT: return a < b ? T(1) : T(0);
        case B_LE: return a <= b ? T(1) : T(0);
        case B_GT: return a > b ? T(1) : T(0);
        default: return a >= b ? T(1) : T(0);
    }
}
TALLY_HD float binary_f(int op, float a, float b) { return binary_t(op, a, b); }
TALLY_HD double binary_d(int op, double a, double b) { return binary_t(op, a, b); }

/** Whether an elementwise launch takes the fp64 path: some tensor in it is an integer tensor. */
TALLY_HD bool any_integer(int d0, int d1, int d2) { return !is_floating(d0) || !is_floating(d1) || !is_floating(d2); }

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
    if (any_integer(x.dtype, out.dtype, DT_F32)) {
        GRID_STRIDE(i, out.numel) st_d(out, offset_of(out, i), unary_t(op, ld_d(x, offset_of(x, i))));
    } else {
        GRID_STRIDE(i, out.numel) st(out, offset_of(out, i), unary_f(op, ld(x, offset_of(x, i))));
    }
}

extern "C" __global__ void tally_unary_backward(int op, const __grid_constant__ TDesc x, const __grid_constant__ TDesc dy, const __grid_constant__ TDesc dx) {
    GRID_STRIDE(i, dx.numel) {
        st(dx, offset_of(dx, i), unary_grad(op, ld(x, offset_of(x, i)), ld(dy, offset_of(dy, i))));
    }
}

// One output element of tally_binary / tally_binary_scalar (host-callable: the host check runs it on host buffers).
// exact: fp64 math because an integer tensor takes part (any_integer), else fp32.
TALLY_HD void binary_at(int op, const TDesc& a, const TDesc& b, const TDesc& out, long long i, bool exact) {
    if (exact) st_d(out, offset_of(out, i), binary_d(op, ld_d(a, offset_of(a, i)), ld_d(b, offset_of(b, i))));
    else st(out, offset_of(out, i), binary_f(op, ld(a, offset_of(a, i)), ld(b, offset_of(b, i))));
}

TALLY_HD void binary_scalar_at(int op, const TDesc& a, double s, const TDesc& out, long long i, bool exact) {
    if (exact) st_d(out, offset_of(out, i), binary_d(op, ld_d(a, offset_of(a, i)), s)); // the scalar stays fp64 too
    else st(out, offset_of(out, i), binary_f(op, ld(a, offset_of(a, i)), (float) s));
}

extern "C" __global__ void tally_binary(int op, const __grid_constant__ TDesc a, const __grid_constant__ TDesc b, const __grid_constant__ TDesc out) {
    bool exact = any_integer(a.dtype, b.dtype, out.dtype); // exact integers and comparisons above 2^24
    GRID_STRIDE(i, out.numel) binary_at(op, a, b, out, i, exact);
}

extern "C" __global__ void tally_binary_scalar(int op, const __grid_constant__ TDesc a, double s, const __grid_constant__ TDesc out) {
    bool exact = any_integer(a.dtype, out.dtype, DT_F32);
    GRID_STRIDE(i, out.numel) binary_scalar_at(op, a, s, out, i, exact);
}

// A zero coefficient drops its term entirely (NaN/inf there do not leak, as in BLAS and the CPU reference).
extern "C" __global__ void tally_axpby(double alpha, const __grid_constant__ TDesc x, double beta, const __grid_constant__ TDesc y, const __grid_constant__ TDesc out) {
    GRID_STRIDE(i, out.numel) {
        double v = 0.0;  // fp64 like the CPU reference: optimizer coefficients such as 1 - 1e-8 survive
        if (alpha != 0.0) v += alpha * ld_d(x, offset_of(x, i));
        if (beta != 0.0) v += beta * ld_d(y, offset_of(y, i));
        st_d(out, offset_of(out, i), v);
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
