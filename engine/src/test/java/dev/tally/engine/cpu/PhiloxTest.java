package dev.tally.engine.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Philox-4x32-10 against the Random123 known-answer vectors (kat_vectors: philox4x32_10). */
class PhiloxTest {

    @Test
    void zeroCounterZeroKey() {
        int[] c = {0, 0, 0, 0};
        Philox.block(c, 0, 0);
        assertArrayEquals(new int[]{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, c);
    }

    @Test
    void allOnes() {
        int[] c = {-1, -1, -1, -1};
        Philox.block(c, -1, -1);
        assertArrayEquals(new int[]{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, c);
    }

    @Test
    void piDigits() {
        // Random123 kat: ctr 243f6a88 85a308d3 13198a2e 03707344, key a4093822 299f31d0
        int[] c = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
        Philox.block(c, 0xa4093822, 0x299f31d0);
        assertArrayEquals(new int[]{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}, c);
    }
}
