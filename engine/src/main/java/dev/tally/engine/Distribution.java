package dev.tally.engine;

/** Distributions of {@link Ops#random}: UNIFORM on [a, b), NORMAL with mean a and standard deviation b. */
public enum Distribution { UNIFORM, NORMAL }
