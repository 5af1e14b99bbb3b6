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
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The vector path for scalars not exact in fp32 (AdamW's step size, bias correction, eps) gives the generic kernel's
 * bits: (float) (x ∘ s) in double, for contiguous tensors (vector path) and every other layout (generic path).
 */
class DoubleScalarTest {
    @Test
    void sameBitsAsTheGenericDoubleArithmetic() {
        SeededRandom r = new SeededRandom(5);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        double[] scalars = {1e-8, 0.1, 1 - 1e-3 * 0.1, Math.sqrt(1 - Math.pow(0.999, 3)), -3.3e-7};
        try (MemoryArena arena = TestArenas.open(Device.CPU, 8L << 20)) {
            int m = 37, n = 53; // ragged against every vector length, so both the vector body and the tail run
            double[] x = r.normal(m * n);
            for (int i = 0; i < x.length; i += 17) x[i] *= 1e30; // large values, where fp32 and double arithmetic differ
            for (BinaryOp op : new BinaryOp[] {BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV}) {
                for (double s : scalars) {
                    Tensor a = Views.of(arena, "a", DType.F32, Shape.of(m, n), x, Layout.CONTIGUOUS);
                    Tensor out = arena.allocate("out", DType.F32, m, n);
                    ops.binaryScalar(op, a, s, out);
                    float[] got = out.toFloatArray();
                    for (int i = 0; i < got.length; i++) {
                        float want = (float) Elementwise.binary(op, (float) x[i], s);
                        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got[i]), op + " " + s + " at " + i);
                    }
                    for (Layout layout : Layout.values()) {
                        Tensor av = Views.of(arena, "a", DType.F32, Shape.of(m, n), x, layout);
                        Tensor ov = Views.of(arena, "out", DType.F32, Shape.of(m, n), new double[m * n], layout);
                        ops.binaryScalar(op, av, s, ov);
                        double[] g = Views.read(ov);
                        double[] want = new double[got.length];
                        for (int i = 0; i < got.length; i++) want[i] = got[i];
                        assertArrayEquals(want, g, 0.0, op + " " + s + " " + layout);
                    }
                }
            }
        }
    }
}
