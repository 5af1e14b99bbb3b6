package dev.tally.engine;

/** Elementwise functions of one argument. {@link Ops#unaryBackward} gives dy·f'(x) for each. */
public enum UnaryOp {
    NEG, ABS, EXP, LOG, SQRT, RSQRT, SQUARE, RECIPROCAL, SIN, COS, TANH, SIGMOID, SILU, RELU, SIGN,
    /** 1 where the value is finite, else 0 (8-bit optimizers skip non-finite gradient elements). */
    ISFINITE
}
