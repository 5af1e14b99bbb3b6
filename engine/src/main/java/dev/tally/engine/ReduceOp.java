package dev.tally.engine;

/** Reductions along one dimension (or all). Accumulation is fp32 or wider. */
public enum ReduceOp {
    SUM, MEAN, MAX, MIN,
    /** Σ x² */
    SUM_SQUARES,
    /** sqrt(Σ x²) */
    NORM2,
    /** max |x| */
    MAX_ABS,
    /** log Σ exp(x), stable */
    LOGSUMEXP
}
