package dev.tally.engine.ops;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * RoPE's vector path (contiguous F32 or bf16, double vectors) gives the element loop's bits: the same rotation on a
 * permuted and a sliced view (which take the loop) agrees element for element, bit for bit, forward and inverse, with a
 * position offset, a half width with a vector tail, rows split over the threads, specials, and in place.
 */
class RopeFastPathTest {
    @Test
    void contiguousRopeGivesTheElementLoopsBits() {
        Ops ops = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(12);
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int[] s : new int[][] {{2, 256, 4, 64}, {3, 5, 2, 18}, {1, 7, 3, 2}}) {
                Shape shape = Shape.of(s);
                int n = (int) shape.numel();
                double[] x = r.normal(n, 3.0);
                x[1] = Double.NaN;
                x[n / 2] = Double.POSITIVE_INFINITY;
                x[n - 1] = -0.0;
                x[n / 3] = 1e30;
                for (boolean inverse : new boolean[] {false, true}) {
                    String what = dt + " " + shape + (inverse ? " inverse" : "");
                    try (MemoryArena a = TestArenas.open(Device.CPU, 40L * n + (1 << 16))) {
                        Tensor cx = Views.of(a, "x", dt, shape, x), cout = a.allocate("out", dt, shape);
                        ops.rope(cx, cout, 11, 10000.0, inverse);
                        double[] fast = Views.read(cout);
                        for (Layout layout : new Layout[] {Layout.PERMUTED, Layout.SLICED}) {
                            Tensor vx = Views.of(a, "vx", dt, shape, x, layout), vout = Views.empty(a, "vout", dt, shape, layout);
                            ops.rope(vx, vout, 11, 10000.0, inverse);
                            assertSameBits(Views.read(vout), fast, what + " vs " + layout);
                        }
                        ops.rope(cx, cx, 11, 10000.0, inverse); // in place
                        assertSameBits(fast, Views.read(cx), what + " in place");
                    }
                }
            }
        }
    }

    private static void assertSameBits(double[] expect, double[] got, String what) {
        assertEquals(expect.length, got.length, what);
        for (int i = 0; i < expect.length; i++) {
            assertEquals(Double.doubleToRawLongBits(expect[i]), Double.doubleToRawLongBits(got[i]), what + " at " + i + ": " + expect[i] + " vs " + got[i]);
        }
    }
}
