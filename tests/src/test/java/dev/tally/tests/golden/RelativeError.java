package dev.tally.tests.golden;

/**
 * The one error measure golden replays use: the largest absolute difference relative to the largest expected
 * magnitude,
 *
 * <pre>  relative error = max_i |got_i − expected_i| / max(max_i |expected_i|, 1e-30)</pre>
 *
 * computed in double. Scaling by the array's largest magnitude (not element by element) keeps near-zero entries, whose
 * own relative error means nothing, from dominating; the 1e-30 floor only keeps an all-zero expectation from dividing
 * by zero. A NaN anywhere in the difference makes the error infinite, so it fails every tolerance.
 *
 * @param maxAbsDiff     max_i |got_i − expected_i| (NaN if any difference is NaN)
 * @param maxAbsExpected max_i |expected_i|
 */
public record RelativeError(double maxAbsDiff, double maxAbsExpected) {

    public static RelativeError between(double[] got, double[] expected) {
        requireSameLength(got.length, expected.length);
        double diff = 0, scale = 0;
        for (int i = 0; i < got.length; i++) {
            diff = Math.max(diff, Math.abs(got[i] - expected[i])); // Math.max keeps a NaN
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        return new RelativeError(diff, scale);
    }

    public static RelativeError between(float[] got, float[] expected) {
        requireSameLength(got.length, expected.length);
        double[] g = new double[got.length], e = new double[expected.length];
        for (int i = 0; i < g.length; i++) {
            g[i] = got[i];
            e[i] = expected[i];
        }
        return between(g, e);
    }

    /** maxAbsDiff / max(maxAbsExpected, 1e-30); +∞ when a difference is NaN. */
    public double value() {
        return Double.isNaN(maxAbsDiff) ? Double.POSITIVE_INFINITY : maxAbsDiff / Math.max(maxAbsExpected, 1e-30);
    }

    /** Whether {@link #value()} ≤ {@code tolerance} (never for a NaN difference). */
    public boolean within(double tolerance) {
        return value() <= tolerance;
    }

    private static void requireSameLength(int got, int expected) {
        if (got != expected) throw new AssertionError(got + " values, expected " + expected);
    }
}
