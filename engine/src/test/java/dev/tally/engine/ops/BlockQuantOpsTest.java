package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.DynamicMap;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.tally.engine.testing.Reference.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Block-wise 8-bit quantization with bitsandbytes' dynamic maps: nearest code, sign fix, absmax, round trip. */
class BlockQuantOpsTest {

    /**
     * Codes a correct quantizer may pick: the nearest by brute force, or either neighbour when x sits (to float
     * precision) on the midpoint between two codes, where the tie-break follows bitsandbytes' search path; then the
     * signed sign fix (a code whose sign bit differs from x's moves one step toward x).
     */
    static java.util.Set<Integer> acceptable(float[] code, float x, boolean signed) {
        double best = Double.MAX_VALUE;
        for (int i = 0; i < 256; i++) best = Math.min(best, Math.abs((double) code[i] - x));
        java.util.Set<Integer> ok = new java.util.TreeSet<>();
        for (int i = 0; i < 256; i++) {
            if (Math.abs((double) code[i] - x) <= best + 1e-7 * Math.abs(x) + 1e-12) {
                int c = i;
                if (signed && (Float.floatToRawIntBits(code[c]) < 0) != (Float.floatToRawIntBits(x) < 0)) c += x > 0 ? 1 : -1;
                ok.add(c);
            }
        }
        return ok;
    }

    /** 256 codes from −1 to 1 in equal steps. */
    private static float[] linearCode() {
        float[] code = new float[256];
        for (int i = 0; i < 256; i++) code[i] = (float) (-1 + 2.0 * i / 255);
        return code;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void quantizesToTheNearestCode(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(71);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            // bitsandbytes' signed and unsigned dynamic maps, and an evenly spaced signed code without an exact zero
            for (String book : new String[]{"signed", "unsigned", "linear"}) {
                boolean signed = !book.equals("unsigned");
                float[] code = book.equals("linear") ? linearCode() : DynamicMap.create(signed);
                double[] codeD = new double[256];
                for (int i = 0; i < 256; i++) codeD[i] = code[i];
                Tensor tc = arena.allocate("code", DType.F32, 256).copyFrom(codeD);
                for (int blockSize : new int[]{64, 256, 7}) {
                    for (Shape shape : new Shape[]{Shape.of(1), Shape.of(13, 29), Shape.of(3, 256)}) {
                        long mark = arena.mark();
                        int n = Cases.numel(shape), blocks = (n + blockSize - 1) / blockSize;
                        // magnitudes over many decades, as optimizer states have
                        double[] x = new double[n];
                        double[] mag = r.uniform(n, -7, 0), sgn = r.normal(n);
                        for (int i = 0; i < n; i++) x[i] = Math.pow(10, mag[i]) * (signed ? Math.signum(sgn[i]) : 1);
                        x = Reference.round(dt, x);
                        Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                        Tensor q = Views.empty(arena, "q", DType.U8, shape, layout);
                        Tensor absmax = arena.allocate("absmax", DType.F32, blocks);
                        ops.quantizeBlockwise(tx, tc, absmax, q, blockSize, signed);
                        double[] am = absmax.toDoubleArray(), qv = Views.read(q);
                        String what = book + " block " + blockSize + " " + dt + shape + " " + layout;
                        for (int b = 0; b < blocks; b++) {
                            double m = 0;
                            for (int i = b * blockSize; i < Math.min(n, (b + 1) * blockSize); i++) m = Math.max(m, Math.abs(x[i]));
                            assertEquals((float) m, am[b], what + ": absmax of block " + b);
                        }
                        for (int i = 0; i < n; i++) {
                            float xn = (float) x[i] / (float) am[i / blockSize];
                            java.util.Set<Integer> ok = acceptable(code, xn, signed);
                            assertTrue(ok.contains((int) qv[i]), what + ": code " + (int) qv[i] + " of element " + i
                                    + " (x/absmax " + xn + "), expected one of " + ok);
                        }
                        Tensor back = Views.empty(arena, "back", dt, shape, layout);
                        ops.dequantizeBlockwise(q, tc, absmax, back, blockSize);
                        double[] expect = new double[n];
                        for (int i = 0; i < n; i++) expect[i] = Reference.round(dt, code[(int) qv[i]] * (float) am[i / blockSize]);
                        assertClose(expect, Views.read(back), Cases.rtol(dt), 0, what + ": dequantize");
                        arena.release(mark);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void signFixAndZeroBlocks(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        float[] code = DynamicMap.create(true);
        double[] codeD = new double[256];
        for (int i = 0; i < 256; i++) codeD[i] = code[i];
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor tc = arena.allocate("code", DType.F32, 256).copyFrom(codeD);
            // 1e-9 relative to absmax 1 is nearest to the code +0.0: same sign bit, kept; -1e-9 moves one code down
            Tensor x = arena.allocate("x", DType.F32, 4).copyFrom(new float[]{1, 1e-9f, -1e-9f, 0});
            Tensor q = arena.allocate("q", DType.U8, 4), am = arena.allocate("am", DType.F32, 1);
            ops.quantizeBlockwise(x, tc, am, q, 4, true);
            long[] c = q.toLongArray();
            int zero = java.util.Arrays.binarySearch(code, 0f);
            assertEquals(255, c[0], "1.0 maps to the top code");
            assertEquals(zero, c[1], "tiny positive maps to +0.0 (same sign bit)");
            assertEquals(zero - 1, c[2], "tiny negative keeps its sign");
            assertEquals(zero, c[3], "zero maps to the zero code");
            // an all-zero block dequantizes to zeros
            Tensor z = arena.allocate("z", DType.F32, 5);
            ops.fill(z, 0);
            Tensor qz = arena.allocate("qz", DType.U8, 5), amz = arena.allocate("amz", DType.F32, 2), back = arena.allocate("back", DType.F32, 5);
            ops.quantizeBlockwise(z, tc, amz, qz, 3, true);
            ops.dequantizeBlockwise(qz, tc, amz, back, 3);
            assertClose(new double[5], back.toDoubleArray(), 0, 0, "zero blocks");
            assertTrue(amz.toDoubleArray()[0] == 0, "absmax of a zero block is 0");
        }
    }
}
