package dev.tally.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp(x) for x ≤ 0 in fp32 from adds, multiplies and fused multiply-adds only: x = n·ln2 + r with |r| ≤ ln2/2, e^r by
 * a degree-7 polynomial, 2^n put into the exponent bits. Each of those operations is correctly rounded in the
 * interpreter, C1 and C2 alike (unlike the library exp, whose vector and scalar forms may differ in the last bit), so
 * kernels built on it give the same bits on every JIT tier; the scalar form does the same operations for loop tails.
 * Accuracy about 2 ulp; inputs below −87 (including −∞) give about 1.6e-38 instead of a subnormal or 0, which only the
 * sums of exp(x − max) use, where the max term is 1.
 */
final class VectorExp {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f; // 1.5 · 2^23: adding it rounds to an integer (ties to even)
    private static final float LOW = -87f;
    private static final float C2 = 1 / 2f, C3 = 1 / 6f, C4 = 1 / 24f, C5 = 1 / 120f, C6 = 1 / 720f, C7 = 1 / 5040f;

    private VectorExp() {}

    /** e^x lanewise for x ≤ 0 (NaN lanes give garbage: callers check for NaN separately). */
    static FloatVector expNonPositive(FloatVector x) {
        x = x.max(LOW);
        FloatVector t = x.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND));
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(S, C7);
        p = p.fma(r, FloatVector.broadcast(S, C6));
        p = p.fma(r, FloatVector.broadcast(S, C5));
        p = p.fma(r, FloatVector.broadcast(S, C4));
        p = p.fma(r, FloatVector.broadcast(S, C3));
        p = p.fma(r, FloatVector.broadcast(S, C2));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** The same operations on one value. */
    static float expNonPositive(float x) {
        x = Math.max(x, LOW);
        float t = Math.fma(x, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = C7;
        p = Math.fma(p, r, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        return p * Float.intBitsToFloat(((int) n + 127) << 23);
    }
}
