package dev.tally.engine.cpu;

import dev.tally.engine.DType;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.lang.foreign.MemorySegment;

/**
 * Elementwise kernels over strided, broadcast views; math in double, stored rounded to the output dtype. Rows go to the
 * CPU threads ({@link Loop#outputRows}): every element is computed alone, so the split never changes a bit. Contiguous
 * fp32 and bf16 operands take the vector kernels first ({@link ContiguousF32Kernels}, {@link ContiguousBf16Kernels}),
 * whose unary ops compute in fp32.
 */
final class Elementwise {
    private Elementwise() {}

    static void fill(Tensor out, double value) {
        if (ContiguousF32Kernels.fill(out, value)) return;
        if (out.dtype() == DType.BF16 && out.isContiguous()) { // zeroing bf16 gradients every step: one short per element
            short bits = DType.f32ToBf16((float) value);
            java.lang.foreign.MemorySegment so = out.segment();
            long oo = out.offset();
            ContiguousF32Kernels.forElements(out.numel(), (lo, hi) -> {
                for (long i = lo; i < hi; i++) so.setAtIndex(Buf.S, oo + i, bits);
            });
            return;
        }
        Buf o = Buf.of(out);
        boolean integral = !out.dtype().isFloating();
        long lv = (long) value;
        long[][] st = {out.strides()};
        Loop.outputRows(out, new Tensor[0], st, new long[]{out.offset()}, (row, base, n) -> {
            long s = Loop.inner(st[0]);
            for (int j = 0; j < n; j++) {
                if (integral) o.setLong(base[0] + j * s, lv); else o.set(base[0] + j * s, value);
            }
        });
    }

    static void copy(Tensor src, Tensor dst) {
        if (ContiguousF32Kernels.copy(src, dst)) return;
        Buf a = Buf.of(src), o = Buf.of(dst);
        boolean ints = !src.dtype().isFloating() && !dst.dtype().isFloating();
        long[][] st = {Loop.stridesFor(src, dst.shape()), dst.strides()};
        long sa = Loop.inner(st[0]), so = Loop.inner(st[1]);
        Loop.outputRows(dst, new Tensor[] {src}, st, new long[]{src.offset(), dst.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                if (ints) o.setLong(base[1] + j * so, a.getLong(base[0] + j * sa));
                else o.set(base[1] + j * so, a.get(base[0] + j * sa));
            }
        });
    }

    static void copyFromHost(MemorySegment src, Tensor dst) {
        long bytes = dst.byteSize();
        if (src.byteSize() < bytes) {
            throw new IllegalArgumentException("copyFromHost: host buffer of " + src.byteSize() + " B is smaller than "
                    + dst + " (" + bytes + " B)");
        }
        MemorySegment seg = dst.segment();
        int es = dst.dtype().byteSize();
        if (dst.isContiguous()) {
            MemorySegment.copy(src, 0, seg, dst.offset() * es, bytes);
            return;
        }
        long[][] st = {dst.strides()};
        long s = Loop.inner(st[0]);
        Loop.rows(dst.dims(), st, new long[]{dst.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                MemorySegment.copy(src, (row * n + j) * es, seg, (base[0] + j * s) * es, es);
            }
        });
    }

    static void copyToHost(Tensor src, MemorySegment dst) {
        long bytes = src.byteSize();
        if (dst.byteSize() < bytes) {
            throw new IllegalArgumentException("copyToHost: host buffer of " + dst.byteSize() + " B is smaller than "
                    + src + " (" + bytes + " B)");
        }
        MemorySegment seg = src.segment();
        int es = src.dtype().byteSize();
        if (src.isContiguous()) {
            MemorySegment.copy(seg, src.offset() * es, dst, 0, bytes);
            return;
        }
        long[][] st = {src.strides()};
        long s = Loop.inner(st[0]);
        Loop.rows(src.dims(), st, new long[]{src.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                MemorySegment.copy(seg, (base[0] + j * s) * es, dst, (row * n + j) * es, es);
            }
        });
    }

    static double unary(UnaryOp op, double x) {
        return switch (op) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1.0 / Math.sqrt(x);
            case SQUARE -> x * x;
            case RECIPROCAL -> 1.0 / x;
            case SIN -> Math.sin(x);
            case COS -> Math.cos(x);
            case TANH -> Math.tanh(x);
            case SIGMOID -> sigmoid(x);
            case SILU -> x * sigmoid(x);
            case RELU -> x > 0 ? x : (x == x ? 0.0 : x);
            case SIGN -> x > 0 ? 1.0 : x < 0 ? -1.0 : (x == x ? 0.0 : x);
            case ISFINITE -> Double.isFinite(x) ? 1.0 : 0.0;
        };
    }

    static double sigmoid(double x) {
        return x >= 0 ? 1.0 / (1.0 + Math.exp(-x)) : Math.exp(x) / (1.0 + Math.exp(x));
    }

    /** dy · f'(x). */
    static double unaryGrad(UnaryOp op, double x, double dy) {
        return switch (op) {
            case NEG -> -dy;
            case ABS -> x > 0 ? dy : x < 0 ? -dy : 0.0;
            case EXP -> dy * Math.exp(x);
            case LOG -> dy / x;
            case SQRT -> dy * 0.5 / Math.sqrt(x);
            case RSQRT -> dy * -0.5 / (x * Math.sqrt(x));
            case SQUARE -> dy * 2.0 * x;
            case RECIPROCAL -> -dy / (x * x);
            case SIN -> dy * Math.cos(x);
            case COS -> -dy * Math.sin(x);
            case TANH -> {
                double t = Math.tanh(x);
                yield dy * (1.0 - t * t);
            }
            case SIGMOID -> {
                double s = sigmoid(x);
                yield dy * s * (1.0 - s);
            }
            case SILU -> {
                double s = sigmoid(x);
                yield dy * s * (1.0 + x * (1.0 - s));
            }
            case RELU -> x > 0 ? dy : 0.0;
            case SIGN, ISFINITE -> 0.0;
        };
    }

    static double binary(BinaryOp op, double a, double b) {
        return switch (op) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case MAX -> Math.max(a, b);
            case MIN -> Math.min(a, b);
            case POW -> Math.pow(a, b);
            case LOGADDEXP -> logAddExp(a, b);
            case EQ -> a == b ? 1.0 : 0.0;
            case NE -> a != b ? 1.0 : 0.0;
            case LT -> a < b ? 1.0 : 0.0;
            case LE -> a <= b ? 1.0 : 0.0;
            case GT -> a > b ? 1.0 : 0.0;
            case GE -> a >= b ? 1.0 : 0.0;
        };
    }

    static double logAddExp(double a, double b) {
        double m = Math.max(a, b);
        if (m == Double.NEGATIVE_INFINITY || m == Double.POSITIVE_INFINITY || m != m) return m;
        return m + Math.log1p(Math.exp(-Math.abs(a - b)));
    }

    static void unary(UnaryOp op, Tensor x, Tensor out) {
        if (ContiguousF32Kernels.unary(op, x, out) || ContiguousBf16Kernels.unary(op, x, out)) return;
        Buf a = Buf.of(x), o = Buf.of(out);
        long[][] st = {x.strides(), out.strides()};
        long sa = Loop.inner(st[0]), so = Loop.inner(st[1]);
        Loop.outputRows(out, new Tensor[] {x}, st, new long[]{x.offset(), out.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) o.set(base[1] + j * so, unary(op, a.get(base[0] + j * sa)));
        });
    }

    static void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        if (ContiguousF32Kernels.unaryBackward(op, x, dy, dx) || ContiguousBf16Kernels.unaryBackward(op, x, dy, dx)) return;
        Buf a = Buf.of(x), g = Buf.of(dy), o = Buf.of(dx);
        long[][] st = {x.strides(), dy.strides(), dx.strides()};
        long sa = Loop.inner(st[0]), sg = Loop.inner(st[1]), so = Loop.inner(st[2]);
        Loop.outputRows(dx, new Tensor[] {x, dy}, st, new long[]{x.offset(), dy.offset(), dx.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                o.set(base[2] + j * so, unaryGrad(op, a.get(base[0] + j * sa), g.get(base[1] + j * sg)));
            }
        });
    }

    static void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        if (ContiguousF32Kernels.binary(op, a, b, out) || ContiguousBf16Kernels.binary(op, a, b, out)
                || OneElementOperand.binary(op, a, b, out)) return;
        Buf ba = Buf.of(a), bb = Buf.of(b), o = Buf.of(out);
        long[][] st = {Loop.stridesFor(a, out.shape()), Loop.stridesFor(b, out.shape()), out.strides()};
        long sa = Loop.inner(st[0]), sb = Loop.inner(st[1]), so = Loop.inner(st[2]);
        Loop.outputRows(out, new Tensor[] {a, b}, st, new long[]{a.offset(), b.offset(), out.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                o.set(base[2] + j * so, binary(op, ba.get(base[0] + j * sa), bb.get(base[1] + j * sb)));
            }
        });
    }

    static void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        if (ContiguousF32Kernels.binaryScalar(op, a, s, out) || DoubleScalar.binaryScalar(op, a, s, out)) return;
        Buf ba = Buf.of(a), o = Buf.of(out);
        long[][] st = {a.strides(), out.strides()};
        long sa = Loop.inner(st[0]), so = Loop.inner(st[1]);
        Loop.outputRows(out, new Tensor[] {a}, st, new long[]{a.offset(), out.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) o.set(base[1] + j * so, binary(op, ba.get(base[0] + j * sa), s));
        });
    }

    /** alpha·x + beta·y; a zero coefficient drops its term entirely (so NaN/inf there do not leak, as in BLAS). */
    static void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) {
        if (ContiguousF32Kernels.axpby(alpha, x, beta, y, out)) return;
        Buf bx = Buf.of(x), by = Buf.of(y), o = Buf.of(out);
        long[][] st = {Loop.stridesFor(x, out.shape()), Loop.stridesFor(y, out.shape()), out.strides()};
        long sx = Loop.inner(st[0]), sy = Loop.inner(st[1]), so = Loop.inner(st[2]);
        Loop.outputRows(out, new Tensor[] {x, y}, st, new long[]{x.offset(), y.offset(), out.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                double v = 0;
                if (alpha != 0) v += alpha * bx.get(base[0] + j * sx);
                if (beta != 0) v += beta * by.get(base[1] + j * sy);
                o.set(base[2] + j * so, v);
            }
        });
    }

    /** cond ≠ 0 ? a : b, broadcasting; the unselected side is never read into the result (NaN/inf cannot leak). */
    static void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
        Buf bc = Buf.of(cond), ba = Buf.of(a), bb = Buf.of(b), o = Buf.of(out);
        long[][] st = {Loop.stridesFor(cond, out.shape()), Loop.stridesFor(a, out.shape()), Loop.stridesFor(b, out.shape()), out.strides()};
        long sc = Loop.inner(st[0]), sa = Loop.inner(st[1]), sb = Loop.inner(st[2]), so = Loop.inner(st[3]);
        Loop.outputRows(out, new Tensor[] {cond, a, b}, st, new long[]{cond.offset(), a.offset(), b.offset(), out.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                boolean pick = bc.get(base[0] + j * sc) != 0;
                o.set(base[3] + j * so, pick ? ba.get(base[1] + j * sa) : bb.get(base[2] + j * sb));
            }
        });
    }
}
