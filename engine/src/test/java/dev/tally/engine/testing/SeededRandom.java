package dev.tally.engine.testing;

import java.util.SplittableRandom;

/** Seeded random fillers for test inputs; same seed, same data on every run and device. */
public final class SeededRandom {
    private final SplittableRandom random;

    public SeededRandom(long seed) {
        this.random = new SplittableRandom(seed);
    }

    /** Standard normal values scaled by {@code scale}. */
    public double[] normal(int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = gaussian() * scale;
        return v;
    }

    public double[] normal(int n) { return normal(n, 1.0); }

    public double[] uniform(int n, double lo, double hi) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = lo + (hi - lo) * random.nextDouble();
        return v;
    }

    /** Integers in [lo, hi). */
    public long[] ints(int n, long lo, long hi) {
        long[] v = new long[n];
        for (int i = 0; i < n; i++) v[i] = random.nextLong(lo, hi);
        return v;
    }

    public int nextInt(int bound) { return random.nextInt(bound); }

    public long nextLong() { return random.nextLong(); }

    private double gaussian() {
        double u1 = random.nextDouble(), u2 = random.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
}
