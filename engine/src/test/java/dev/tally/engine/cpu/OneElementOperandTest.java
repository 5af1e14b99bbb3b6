package dev.tally.engine.cpu;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
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

/** A one-element operand broadcast over a contiguous tensor gives the generic kernel's bits (its other layouts). */
class OneElementOperandTest {
    @Test
    void sameBitsAsEveryOtherLayout() {
        SeededRandom r = new SeededRandom(9);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        try (MemoryArena arena = TestArenas.open(Device.CPU, 8L << 20)) {
            int m = 29, n = 41;
            double[] x = r.normal(m * n);
            x[5] = Double.NaN;
            x[6] = -0.0;
            x[7] = Double.POSITIVE_INFINITY;
            for (double s : new double[] {0.37, -1e-30, 0.0, Double.NaN}) {
                Tensor b = arena.allocate("b", DType.F32, 1);
                b.copyFrom(new float[] {(float) s});
                for (BinaryOp op : new BinaryOp[] {BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV, BinaryOp.MAX, BinaryOp.MIN}) {
                    double[] reference = null;
                    for (Layout layout : Layout.values()) {
                        Tensor a = Views.of(arena, "a", DType.F32, Shape.of(m, n), x, layout);
                        Tensor out = Views.of(arena, "out", DType.F32, Shape.of(m, n), new double[m * n], layout);
                        ops.binary(op, a, b, out);
                        double[] got = Views.read(out);
                        if (reference == null) reference = got;
                        else assertArrayEquals(reference, got, 0.0, op + " " + s + " " + layout);
                    }
                }
            }
        }
    }
}
