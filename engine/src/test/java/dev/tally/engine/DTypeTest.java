package dev.tally.engine;

import dev.tally.engine.cpu.Philox;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DTypeTest {
    private static float bf(float x) { return DType.bf16ToF32(DType.f32ToBf16(x)); }

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 is exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even mantissa (1.0)
        assertEquals(1.0f, bf(1.0f + 0x1p-8f));
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up
        assertEquals(1.0f + 0x1p-6f, bf(1.0f + 3 * 0x1p-8f));
        // just above the halfway point rounds up
        assertEquals(1.0f + 0x1p-7f, bf(Math.nextUp(1.0f + 0x1p-8f)));
        assertEquals(-1.0f, bf(-1.0f - 0x1p-8f));
        assertEquals(3.140625f, bf(3.14159265f));
    }

    @Test
    void bf16SpecialValues() {
        assertTrue(Float.isNaN(bf(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, bf(Float.POSITIVE_INFINITY));
        assertEquals(Float.NEGATIVE_INFINITY, bf(Float.NEGATIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, bf(Float.MAX_VALUE), "overflow rounds to infinity");
        float sub = Float.MIN_NORMAL / 4; // subnormal: kept exactly when representable
        assertEquals(sub, bf(sub));
        assertEquals(0x1p-133f, bf(0x1p-133f));
        assertEquals(-0.0f, bf(-0.0f));
        assertEquals(1 / -0.0f, 1 / bf(-0.0f));
    }

    @Test
    void sizesAndParsing() {
        assertEquals(2, DType.BF16.byteSize());
        assertEquals(8, DType.I64.byteSize());
        assertEquals(DType.BF16, DType.parse("bfloat16"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DType.parse("f8"));
        assertTrue(e.getMessage().contains("'f8'"));
    }

    @Test
    void philoxKnownAnswers() {
        // Random123's published known-answer vectors for philox4x32-10
        assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, Philox.block(0, 0, 0, 0, 0, 0));
        assertArrayEquals(new int[] {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, Philox.block(-1, -1, -1, -1, -1, -1));
        assertArrayEquals(new int[] {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
                Philox.block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0));
    }
}
