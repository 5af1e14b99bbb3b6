package dev.tally.engine.testing;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

import java.util.SplittableRandom;

/** Test helpers: an arena per test, seeded random tensors, and comparison against float64 references. */
public final class Fixtures implements AutoCloseable {
    public final MemoryLedger ledger = new MemoryLedger();
    public final MemoryArena arena;
    private final SplittableRandom rnd;

    public Fixtures(Device device, long capacity, long seed) {
        arena = new MemoryArena(ledger, "test", MemoryCategory.OTHER, device, capacity);
        rnd = new SplittableRandom(seed);
    }

    public Fixtures(Device device) { this(device, 64L << 20, 42); }

    public Tensor zeros(DType dt, int... shape) {
        Tensor t = arena.allocate("t", dt, shape);
        t.ops().fill(t, 0);
        return t;
    }

    /** Uniform values in [-1, 1) (exactly representable in the dtype). */
    public Tensor random(DType dt, int... shape) {
        Tensor t = arena.allocate("t", dt, shape);
        double[] v = new double[Math.toIntExact(t.numel())];
        for (int i = 0; i < v.length; i++) v[i] = rnd.nextDouble(-1, 1);
        t.copyFrom(v);
        return t;
    }

    public double[] doubles(int n, double lo, double hi) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextDouble(lo, hi);
        return v;
    }

    public int nextInt(int bound) { return rnd.nextInt(bound); }

    /** max |a − b| / max(1, |b|) elementwise. */
    public static double maxRelError(double[] actual, double[] expected) {
        if (actual.length != expected.length) throw new AssertionError(actual.length + " values vs " + expected.length);
        double worst = 0;
        for (int i = 0; i < actual.length; i++) {
            double e = Math.abs(actual[i] - expected[i]) / Math.max(1.0, Math.abs(expected[i]));
            if (Double.isNaN(e)) return Double.POSITIVE_INFINITY;
            worst = Math.max(worst, e);
        }
        return worst;
    }

    public static void assertClose(double[] actual, double[] expected, double tol, String what) {
        double err = maxRelError(actual, expected);
        if (!(err <= tol)) throw new AssertionError(what + ": max relative error " + err + " > " + tol);
    }

    @Override public void close() { arena.close(); }
}
