package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;

import static dev.tally.engine.testing.Reference.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ops.random: the exact Philox stream of the Javadoc (an independent Philox here, checked against Random123's
 * known answers), the uniform and Box–Muller transforms, offsets, layouts, and sane statistics.
 */
class RandomOpsTest {

    /** Reference Philox-4x32-10, written from the paper independently of the backend's. */
    static int[] philox(long counter, long seed) {
        long c0 = counter & 0xFFFFFFFFL, c1 = counter >>> 32, c2 = 0, c3 = 0;
        long k0 = seed & 0xFFFFFFFFL, k1 = seed >>> 32;
        for (int round = 0; round < 10; round++) {
            long p0 = 0xD2511F53L * c0, p1 = 0xCD9E8D57L * c2;
            long n0 = ((p1 >>> 32) ^ c1 ^ k0) & 0xFFFFFFFFL, n1 = p1 & 0xFFFFFFFFL;
            long n2 = ((p0 >>> 32) ^ c3 ^ k1) & 0xFFFFFFFFL, n3 = p0 & 0xFFFFFFFFL;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 = (k0 + 0x9E3779B9L) & 0xFFFFFFFFL;
            k1 = (k1 + 0xBB67AE85L) & 0xFFFFFFFFL;
        }
        return new int[]{(int) c0, (int) c1, (int) c2, (int) c3};
    }

    static double uniform(int r) {
        return ((r >>> 8) + 0.5) / (1 << 24);
    }

    static double[] expected(Distribution dist, long seed, long offset, double a, double b, int n) {
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            int[] r = philox(offset + i / 4, seed);
            int lane = i % 4;
            if (dist == Distribution.UNIFORM) {
                out[i] = a + (b - a) * uniform(r[lane]);
            } else {
                int p = lane & ~1;
                double u0 = uniform(r[p]), u1 = uniform(r[p + 1]);
                double rad = Math.sqrt(-2 * Math.log(u0));
                double z = (lane & 1) == 0 ? rad * Math.cos(2 * Math.PI * u1) : rad * Math.sin(2 * Math.PI * u1);
                out[i] = a + b * z;
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void referencePhiloxMatchesRandom123(Device device) {
        TestDevices.assumeUsable(device);
        // ctr = 0, key = 0 (the known-answer vector; a counter of 0 is (0, 0, 0, 0) in our (lo, hi, 0, 0) layout)
        assertEquals(Arrays.toString(new int[]{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}), Arrays.toString(philox(0, 0)));
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void followsTheDocumentedStream(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        long seed = 0x1234_5678_9ABC_DEF0L;
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : new Shape[]{Shape.of(1), Shape.of(7), Shape.of(3, 5), Shape.of(2, 3, 6)}) {
                int n = Cases.numel(shape);
                Tensor out = Views.empty(arena, "r", dt, shape, layout);
                ops.random(out, Distribution.UNIFORM, seed, 5, -2, 3);
                assertClose(Reference.round(dt, expected(Distribution.UNIFORM, seed, 5, -2, 3, n)), Views.read(out),
                        Cases.rtol(dt), 1e-6, "uniform " + dt + shape + " " + layout);
                ops.random(out, Distribution.NORMAL, seed, (1L << 32) + 3, 1, 0.5);
                assertClose(Reference.round(dt, expected(Distribution.NORMAL, seed, (1L << 32) + 3, 1, 0.5, n)), Views.read(out),
                        Cases.rtol(dt), 1e-5, "normal " + dt + shape + " " + layout);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void offsetsContinueTheStreamAndStatisticsAreSane(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        int n = 40_000;
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor all = arena.allocate("all", DType.F32, n);
            ops.random(all, Distribution.NORMAL, 7, 0, 0, 1);
            double[] v = all.toDoubleArray();
            // a call at offset 100 continues at element 400 of the offset-0 call
            Tensor tail = arena.allocate("tail", DType.F32, 8);
            ops.random(tail, Distribution.NORMAL, 7, 100, 0, 1);
            assertClose(Arrays.copyOfRange(v, 400, 408), tail.toDoubleArray(), 0, 0, "offset continues the stream");
            double mean = Arrays.stream(v).average().orElseThrow();
            double var = Arrays.stream(v).map(x -> (x - mean) * (x - mean)).sum() / n;
            assertTrue(Math.abs(mean) < 0.03 && Math.abs(var - 1) < 0.05, "normal mean " + mean + " variance " + var);
            ops.random(all, Distribution.UNIFORM, 8, 0, 0, 1);
            double[] u = all.toDoubleArray();
            assertTrue(Arrays.stream(u).allMatch(x -> x > 0 && x < 1), "uniform values in (0, 1)");
            double um = Arrays.stream(u).average().orElseThrow();
            assertTrue(Math.abs(um - 0.5) < 0.01, "uniform mean " + um);
            // another seed gives another stream
            Tensor other = arena.allocate("other", DType.F32, 8);
            ops.random(other, Distribution.UNIFORM, 9, 0, 0, 1);
            assertTrue(!Arrays.equals(Arrays.copyOf(u, 8), other.toDoubleArray()), "seeds 8 and 9 differ");
        }
    }
}
