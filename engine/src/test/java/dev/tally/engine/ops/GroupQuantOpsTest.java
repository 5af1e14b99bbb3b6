package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Asymmetric group quantization (int8 weights, packed int4) against a float64 reference: scales, zero points, codes and
 * dequantized values, including saturated groups (all positive → z = 0, all negative → z = L, constant → the 1e-5 floor);
 * stochastic rounding unbiased in expectation and reproducible for a seed.
 */
class GroupQuantOpsTest {

    /** Weights in groups of {@code g}: random N(0, 0.02²) groups, then an all-positive, an all-negative and a constant one. */
    static double[] weights(int n, int g, long seed) {
        double[] w = new SeededRandom(seed).normal(n, 0.02);
        for (int i = 0; i < g && g + i < n; i++) w[i] = 0.01 + Math.abs(w[i]);          // group 0 all positive
        for (int i = g; i < 2 * g && i < n; i++) w[i] = -0.01 - Math.abs(w[i]);        // group 1 all negative
        for (int i = 2 * g; i < 3 * g && i < n; i++) w[i] = 0.0375;                     // group 2 constant
        if (n > 3 * g) w[3 * g] = 0.5;                                                  // an outlier
        return w;
    }

    /** The float64 reference of one group: {s, z} and codes (round half to even). */
    static double[] referenceScaleZero(double[] w, int start, int end, int levels) {
        double mn = Double.POSITIVE_INFINITY, mx = Double.NEGATIVE_INFINITY;
        for (int i = start; i < end; i++) {
            double v = (float) w[i];
            mn = Math.min(mn, v);
            mx = Math.max(mx, v);
        }
        double s = Math.max(mx - mn, 1e-5) / levels;
        double z = Math.min(levels, Math.max(0, -Math.rint(mn / s)));
        return new double[] {s, z};
    }

    static int code(byte[] codes, int bits, int i) {
        if (bits == 8) return codes[i] & 0xFF;
        int b = codes[i / 2] & 0xFF;
        return (i & 1) == 0 ? b & 0xF : b >>> 4;
    }

    static byte[] bytes(Tensor codes) {
        long[] l = codes.toLongArray();
        byte[] b = new byte[l.length];
        for (int i = 0; i < l.length; i++) b[i] = (byte) l[i];
        return b;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void roundToNearestMatchesFloat64(Device device) {
        TestDevices.assumeUsable(device);
        for (int bits : new int[] {8, 4}) {
            for (int g : new int[] {128, 256, 100}) {
                int[] dims = {7, 3 * g / 7 + 101}; // the last group is shorter when numel is not a multiple of g
                Shape shape = Shape.of(dims);
                int n = (int) shape.numel();
                double[] w = weights(n, g, 11 + g);
                try (MemoryArena arena = TestArenas.open(device)) {
                    Tensor x = arena.allocate("w", DType.F32, shape).copyFrom(w);
                    QuantizedTensor q = QuantizedTensor.allocate(arena, "q", shape, bits, g);
                    q.quantize(x, GroupRounding.NEAREST);
                    Tensor back = arena.allocate("back", DType.F32, shape);
                    q.dequantize(back);
                    byte[] codes = bytes(q.codes());
                    double[] s = q.scales().toDoubleArray(), z = q.zeros().toDoubleArray(), d = back.toDoubleArray();
                    int levels = (1 << bits) - 1;
                    assertEquals(QuantizedTensor.groups(shape, g), s.length);
                    for (int grp = 0; grp < s.length; grp++) {
                        int start = grp * g, end = Math.min(n, start + g);
                        double[] ref = referenceScaleZero(w, start, end, levels);
                        assertEquals(ref[0], s[grp], 1e-6 * ref[0], "scale of group " + grp);
                        assertEquals(ref[1], z[grp], 0.0, "zero point of group " + grp);
                        for (int i = start; i < end; i++) {
                            double u = (float) w[i] / ref[0];
                            double expected = Math.min(levels, Math.max(0, Math.rint(u) + ref[1]));
                            int c = code(codes, bits, i);
                            // float32 division may land on the other side of a .5 tie only when u is that close to it
                            if (c != expected && Math.abs(u - Math.floor(u) - 0.5) > 1e-4) {
                                fail(bits + "-bit, group " + g + ": code of element " + i + " is " + c + ", float64 says " + expected);
                            }
                            assertEquals((c - z[grp]) * s[grp], d[i], 1e-6 * Math.abs(d[i]) + 1e-12, "dequantized element " + i);
                            // round to nearest: within half a step wherever the code is not clamped (a group that does not
                            // contain 0 saturates: its zero point is clamped to 0 or L, as in the references)
                            double unclamped = Math.rint(u) + ref[1];
                            if (unclamped >= 0 && unclamped <= levels) {
                                assertTrue(Math.abs(d[i] - (float) w[i]) <= s[grp] * (0.5 + 1e-4),
                                        "element " + i + " off by " + Math.abs(d[i] - w[i]));
                            }
                        }
                    }
                    // the saturated groups: all positive → z = 0; all negative → z = L; constant → s = 1e-5 / L
                    assertEquals(0.0, z[0]);
                    assertEquals(levels, z[1]);
                    assertEquals((float) (1e-5f / levels), (float) s[2]);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void stochasticRoundingIsUnbiasedAndSeeded(Device device) {
        TestDevices.assumeUsable(device);
        int g = 128, n = 4 * g, repeats = 2000;
        Shape shape = Shape.of(4, g);
        double[] w = weights(n, g, 5);
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor x = arena.allocate("w", DType.F32, shape).copyFrom(w);
            QuantizedTensor q = QuantizedTensor.allocate(arena, "q", shape, 8, g);
            Tensor back = arena.allocate("back", DType.F32, shape);
            double[] sum = new double[n];
            for (int k = 0; k < repeats; k++) {
                q.quantize(x, new GroupRounding.Philox(42, (long) k * n));
                q.dequantize(back);
                double[] d = back.toDoubleArray();
                for (int i = 0; i < n; i++) sum[i] += d[i];
            }
            double[] s = q.scales().toDoubleArray();
            int checked = 0;
            double[] z = q.zeros().toDoubleArray();
            for (int grp = 0; grp < 4; grp++) {
                if (z[grp] == 0 || z[grp] == 255) continue; // saturated groups clamp (biased by design, as the reference)
                int start = grp * g;
                for (int i = start; i < start + g; i++) {
                    // an element whose lower or upper neighbour code falls past the clamp (the group's extremes: z was
                    // rounded) is biased by the clamp, as in the reference; every other element must be unbiased
                    float u = (float) w[i] / (float) s[grp];
                    if (Math.floor(u) + z[grp] < 0 || Math.ceil(u) + z[grp] > 255) continue;
                    // each draw is one of two levels s apart: variance ≤ s²/4, so the mean's std ≤ s / (2√K); allow 6 std
                    double bound = 6 * s[grp] / (2 * Math.sqrt(repeats)) + 1e-7 * Math.abs(w[i]);
                    double mean = sum[i] / repeats;
                    assertTrue(Math.abs(mean - (float) w[i]) <= bound,
                            "element " + i + ": mean " + mean + " vs " + (float) w[i] + " (bound " + bound + ")");
                    checked++;
                }
            }
            assertTrue(checked >= g - 2, "checked " + checked + " elements"); // group 3 (0 < z < 255) at least
            // same seed and offset → same codes; another seed → other codes
            q.quantize(x, new GroupRounding.Philox(7, 0));
            byte[] first = bytes(q.codes());
            q.quantize(x, new GroupRounding.Philox(7, 0));
            assertArrayEquals(first, bytes(q.codes()));
            q.quantize(x, new GroupRounding.Philox(8, 0));
            assertFalse(java.util.Arrays.equals(first, bytes(q.codes())));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void givenRandomNumbersDecideTheDirection(Device device) {
        TestDevices.assumeUsable(device);
        try (MemoryArena arena = TestArenas.open(device)) {
            Shape shape = Shape.of(1, 4);
            // group min 0, max 2.55 → s = 0.01, z = 0; u = 100.25 for 1.0025: up iff r < 0.25
            Tensor x = arena.allocate("w", DType.F32, shape).copyFrom(new double[] {0, 1.0025, 1.0025, 2.55});
            Tensor r = arena.allocate("r", DType.F32, shape).copyFrom(new double[] {0.5, 0.2, 0.3, 0.5});
            QuantizedTensor q = QuantizedTensor.allocate(arena, "q", shape, 8, 4);
            q.quantize(x, new GroupRounding.Given(r));
            long[] c = q.codes().toLongArray();
            assertEquals(0, c[0]);
            assertEquals(101, c[1]);
            assertEquals(100, c[2]);
            assertEquals(255, c[3]);
        }
    }

    @Test
    void metaChecksAndNamesBadArguments() {
        try (MemoryArena arena = TestArenas.open(Device.META, 1L << 30)) {
            QuantizedTensor q = QuantizedTensor.allocate(arena, "layers.0.q_proj", Shape.of(4096, 4096), 8, 128);
            Tensor w = arena.allocate("w", DType.BF16, 4096, 4096);
            q.quantize(w, new GroupRounding.Philox(1, 0));
            q.dequantize(w);
            Tensor wrong = arena.allocate("wrong", DType.F32, 4096, 11008);
            var e = assertThrows(IllegalArgumentException.class, () -> q.quantize(wrong, GroupRounding.NEAREST));
            assertTrue(e.getMessage().contains("quantizeGroups") && e.getMessage().contains("layers.0.q_proj"), e.getMessage());
            assertEquals(4096L * 4096 + 2 * 4 * 4096L * 4096 / 128, QuantizedTensor.bookedBytes(Shape.of(4096, 4096), 8, 128));
            assertThrows(IllegalArgumentException.class, () -> QuantizedTensor.allocate(arena, "x", Shape.of(8), 3, 4));
        }
    }
}
