package dev.tally.engine.cpu;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fast paths' own e^x: within 1 ulp of the correctly rounded value over the whole fp32 range, exact at the edges. */
class ContiguousF32ExpTest {
    private static final int L = FloatVector.SPECIES_PREFERRED.length();

    private static float[] exp(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i += L) ContiguousF32Kernels.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, i)).intoArray(out, i);
        return out;
    }

    @Test
    void withinOneUlpFromUnderflowToOverflow() {
        int n = 1 << 16;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -110f + 205f * i / n; // [-110, 95): past both ends of the finite range
        float[] y = exp(x);
        for (int i = 0; i < n; i++) {
            float ref = (float) Math.exp(x[i]);
            long ulps = Math.abs((long) Float.floatToRawIntBits(y[i]) - Float.floatToRawIntBits(ref));
            assertTrue(ulps <= 1, "exp(" + x[i] + ") = " + y[i] + ", correctly rounded " + ref);
        }
    }

    @Test
    void scalarFormGivesTheVectorLanesBits() {
        int n = 1 << 16;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -110f + 205f * i / n;
        float[] special = {Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, 0f, -0f, 88.72283f, 88.7229f, -87.33655f, -104.5f,
                1e-8f, -1e-8f, Float.MIN_VALUE, -Float.MAX_VALUE, Float.MAX_VALUE};
        System.arraycopy(special, 0, x, 0, special.length);
        float[] y = exp(x);
        for (int i = 0; i < n; i++) {
            assertEquals(Float.floatToRawIntBits(y[i]), Float.floatToRawIntBits(ContiguousF32Kernels.exp(x[i])), "exp(" + x[i] + ")");
        }
    }

    @Test
    void specialValues() {
        float[] x = new float[L * ((11 + L - 1) / L)];
        float[] v = {Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, 0f, -0f, 88.72283f, 88.7229f, -87.33655f, -104.5f, 1e-8f, -1e-8f};
        System.arraycopy(v, 0, x, 0, v.length);
        float[] y = exp(x);
        float[] expected = {Float.NaN, 0f, Float.POSITIVE_INFINITY, 1f, 1f, 3.4027985E38f, Float.POSITIVE_INFINITY, 1.1754907E-38f, 0f, 1f, 1f};
        for (int i = 0; i < v.length; i++) assertEquals(expected[i], y[i], "exp(" + v[i] + ")");
    }
}
