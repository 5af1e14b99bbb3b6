package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The vector bf16 conversions against the scalar ones in {@link DType}, on every bf16 pattern and every rounding case. */
class Bf16LanesTest {
    private static final int L = Bf16Lanes.L;

    @Test
    void wideningGivesEveryBf16PatternsFloatBits() {
        int n = 1 << 16;
        MemorySegment src = MemorySegment.ofArray(new short[n + 3]);
        for (int i = 0; i < n + 3; i++) src.setAtIndex(Buf.S, i, (short) i);
        float[] out = new float[L];
        for (int i = 0; i < n; i += L) {
            Bf16Lanes.widen(src, i).intoArray(out, 0);
            for (int j = 0; j < L; j++) assertEquals(bits(DType.bf16ToF32((short) (i + j))), bits(out[j]), "widen 0x" + Integer.toHexString(i + j));
        }
        // a row of n + 3 values from element 1: whole vectors and a scalar tail
        MemorySegment row = MemorySegment.ofArray(new float[n + 3]);
        Bf16Lanes.widenRow(src, 1, row, 0, n + 2);
        for (int i = 0; i < n + 2; i++) {
            assertEquals(bits(DType.bf16ToF32((short) (i + 1))), bits(row.getAtIndex(Buf.F, i)), "widenRow 0x" + Integer.toHexString(i + 1));
        }
    }

    @Test
    void narrowingRoundsAsTheScalarConversionDoes() {
        // every bf16 pattern (NaNs, infinities, subnormals, zeros of both signs) with low halves below, at and above the
        // tie, the tie with an odd and an even kept bit, the largest carry (to the next binade and to infinity), and noise
        int[] lows = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
        SplittableRandom random = new SplittableRandom(7);
        int n = (1 << 16) * (lows.length + 1);
        float[] values = new float[n];
        for (int hi = 0, k = 0; hi < 1 << 16; hi++) {
            for (int low : lows) values[k++] = Float.intBitsToFloat(hi << 16 | low);
            values[k++] = Float.intBitsToFloat(hi << 16 | random.nextInt(1 << 16));
        }
        MemorySegment src = MemorySegment.ofArray(values), dst = MemorySegment.ofArray(new short[n]);
        Bf16Lanes.narrowRow(src, 3, dst, 0, n - 3); // whole vectors and a scalar tail, from an unaligned start
        for (int i = 0; i < n - 3; i++) {
            assertEquals(DType.f32ToBf16(values[i + 3]), dst.getAtIndex(Buf.S, i), "float bits 0x" + Integer.toHexString(bits(values[i + 3])));
        }
    }

    private static int bits(float f) {
        return Float.floatToRawIntBits(f);
    }
}
