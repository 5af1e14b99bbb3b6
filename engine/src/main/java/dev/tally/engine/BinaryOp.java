package dev.tally.engine;

/** Elementwise functions of two arguments, with numpy broadcasting. Comparisons produce 1 or 0. */
public enum BinaryOp {
    ADD, SUB, MUL, DIV, MAX, MIN, POW,
    /** log(exp(a) + exp(b)), computed stably (the running log-sum-exp merge of Cut Cross-Entropy). */
    LOGADDEXP,
    EQ, NE, LT, LE, GT, GE
}
