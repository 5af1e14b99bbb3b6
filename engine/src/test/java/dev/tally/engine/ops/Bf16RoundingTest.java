package dev.tally.engine.ops;

import java.lang.foreign.Arena;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** f32 → bf16 round-to-nearest-even, in DType's helper and in every op that stores bf16. */
class Bf16RoundingTest {

    /** {f32 bits, expected bf16 bits}. */
    private static final int[][] CASES = {
            {0x3F800000, 0x3F80},             // 1.0 exact
            {0x3F808000, 0x3F80},             // tie, even below: stays
            {0x3F818000, 0x3F82},             // tie, odd below: rounds up to even
            {0x3F808001, 0x3F81},             // just above the tie: up
            {0x3F807FFF, 0x3F80},             // just below the tie: down
            {0xBF818000, 0xBF82},             // negative tie to even
            {0x7F7FFFFF, 0x7F80},             // largest float overflows to +inf
            {0xFF7FFFFF, 0xFF80},             // and to -inf
            {0x7F7F7FFF, 0x7F7F},             // large, stays finite
            {0x7F800000, 0x7F80},             // +inf
            {0xFF800000, 0xFF80},             // -inf
            {0x00000001, 0x0000},             // smallest subnormal rounds to +0
            {0x00008000, 0x0000},             // subnormal tie, even below
            {0x00018000, 0x0002},             // subnormal tie, odd below
            {0x00010001, 0x0001},             // subnormal, rounds down
            {0x80000000, 0x8000},             // -0 keeps its sign
    };

    @Test
    void helperRoundsToNearestEven() {
        for (int[] c : CASES) {
            short got = DType.f32ToBf16(Float.intBitsToFloat(c[0]));
            assertEquals(c[1], got & 0xFFFF, String.format("f32 %08x -> bf16", c[0]));
        }
        short nan = DType.f32ToBf16(Float.intBitsToFloat(0x7F800001)); // signalling NaN whose payload would truncate to inf
        assertTrue(Float.isNaN(DType.bf16ToF32(nan)), "NaN stays NaN");
        assertTrue(Float.isNaN(DType.bf16ToF32(DType.f32ToBf16(Float.intBitsToFloat(0xFFC00000)))), "negative quiet NaN");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void opsStoreBf16WithTheSameRounding(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        int n = CASES.length + 1;
        try (MemoryArena arena = TestArenas.open(device); var host = Arena.ofConfined()) {
            MemorySegment in = host.allocate(4L * n), out = host.allocate(2L * n);
            for (int i = 0; i < CASES.length; i++) in.setAtIndex(ValueLayout.JAVA_INT, i, CASES[i][0]);
            in.setAtIndex(ValueLayout.JAVA_INT, CASES.length, 0x7FC00000);
            Tensor f = arena.allocate("f32", DType.F32, n), b = arena.allocate("bf16", DType.BF16, n);
            ops.copyFromHost(in, f);
            ops.copy(f, b);                                  // the cast op
            check(ops, b, out, "copy");
            ops.fill(b, 0);
            ops.unary(UnaryOp.NEG, f, f);
            ops.unary(UnaryOp.NEG, f, b);                    // an op computing in fp32 and storing bf16
            check(ops, b, out, "unary NEG");
        }
    }

    private static void check(Ops ops, Tensor b, MemorySegment out, String what) {
        ops.copyToHost(b, out);
        for (int i = 0; i < CASES.length; i++) {
            assertEquals(CASES[i][1], out.getAtIndex(ValueLayout.JAVA_SHORT, i) & 0xFFFF, String.format("%s: f32 %08x -> bf16", what, CASES[i][0]));
        }
        assertTrue(Float.isNaN(DType.bf16ToF32(out.getAtIndex(ValueLayout.JAVA_SHORT, CASES.length))), what + ": NaN");
    }
}
