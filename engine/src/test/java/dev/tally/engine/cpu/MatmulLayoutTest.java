package dev.tally.engine.cpu;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The CPU matmul gives the same bits whatever the operands' and output's layouts (training resumed from a checkpoint
 * must reproduce the uninterrupted run bit for bit, even when a tensor comes back as another kind of view).
 */
class MatmulLayoutTest {

    @Test
    void resultBitsDoNotDependOnLayout() {
        SeededRandom r = new SeededRandom(81);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        // one shape on the tiny path, one on the blocked path with several K blocks and ragged tiles
        int[][] sizes = {{5, 7, 9}, {70, 600, 90}};
        try (MemoryArena arena = TestArenas.open(Device.CPU, 32L << 20)) {
            for (int[] s : sizes) {
                int m = s[0], k = s[1], n = s[2];
                double[] a = r.normal(m * k), b = r.normal(k * n), c0 = r.normal(m * n);
                double[] reference = null;
                for (Layout layout : Layout.values()) {
                    Tensor ta = Views.of(arena, "a", DType.F32, Shape.of(m, k), a, layout);
                    Tensor tb = Views.of(arena, "b", DType.F32, Shape.of(k, n), b, layout);
                    Tensor out = Views.of(arena, "out", DType.F32, Shape.of(m, n), c0, layout);
                    ops.matmul(ta, tb, out, 1.5, 0.5);
                    double[] got = Views.read(out);
                    if (reference == null) reference = got;
                    else assertArrayEquals(reference, got, 0.0, "matmul " + m + "x" + k + "x" + n + " with " + layout + " views");
                }
            }
        }
    }
}
