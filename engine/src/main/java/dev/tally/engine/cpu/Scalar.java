package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.UnaryOp;

/** The scalar math of every elementwise op, in double: one definition shared by all CPU kernels. */
final class Scalar {
    private Scalar() {}

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
            case RELU -> x > 0 ? x : 0.0;
            case SIGN -> Math.signum(x);
            case ISFINITE -> Double.isFinite(x) ? 1.0 : 0.0;
        };
    }

    /** f'(x) for the backward pass. */
    static double derivative(UnaryOp op, double x) {
        return switch (op) {
            case NEG -> -1.0;
            case ABS -> Math.signum(x);
            case EXP -> Math.exp(x);
            case LOG -> 1.0 / x;
            case SQRT -> 0.5 / Math.sqrt(x);
            case RSQRT -> -0.5 / (x * Math.sqrt(x));
            case SQUARE -> 2.0 * x;
            case RECIPROCAL -> -1.0 / (x * x);
            case SIN -> Math.cos(x);
            case COS -> -Math.sin(x);
            case TANH -> { double t = Math.tanh(x); yield 1.0 - t * t; }
            case SIGMOID -> { double s = sigmoid(x); yield s * (1.0 - s); }
            case SILU -> { double s = sigmoid(x); yield s * (1.0 + x * (1.0 - s)); }
            case RELU -> x > 0 ? 1.0 : 0.0;
            case SIGN, ISFINITE -> 0.0;
        };
    }

    static double sigmoid(double x) {
        return x >= 0 ? 1.0 / (1.0 + Math.exp(-x)) : Math.exp(x) / (1.0 + Math.exp(x));
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
            case EQ -> a == b ? 1 : 0;
            case NE -> a != b ? 1 : 0;
            case LT -> a < b ? 1 : 0;
            case LE -> a <= b ? 1 : 0;
            case GT -> a > b ? 1 : 0;
            case GE -> a >= b ? 1 : 0;
        };
    }

    static double logAddExp(double a, double b) {
        if (a == Double.NEGATIVE_INFINITY) return b;
        if (b == Double.NEGATIVE_INFINITY) return a;
        double m = Math.max(a, b);
        return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
    }
}
