package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The vector bf16 conversions against the scalar ones in {@link DType}, on every bf16 pattern and every rounding case. */
class Bf16LanesTest {
    private static final int L = Bf16Lanes.L;

    @Test
    void wideningGivesEveryBf16PatternsFloatBits() {
        MemorySegment src = MemorySegment.ofArray(new short[1 << 16]);
        for (int i = 0; i < 1 << 16; i++) src.setAtIndex(Buf.S, i, (short) i);
        float[] out = new float[L];
        for (int i = 0; i < 1 << 16; i += L) {
            Bf16Lanes.widen(src, i).intoArray(out, 0);
            for (int j = 0; j < L; j++) {
                assertEquals(Float.floatToRawIntBits(DType.bf16ToF32((short) (i + j))), Float.floatToRawIntBits(out[j]),
                        "bf16 pattern 0x" + Integer.toHexString(i + j));
            }
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
        for (int i = 0; i < n; i += L) {
            Bf16Lanes.narrowInto(FloatVector.fromMemorySegment(Bf16Lanes.S, src, i * 4L, ByteOrder.nativeOrder()), dst, i);
        }
        for (int i = 0; i < n; i++) {
            assertEquals(DType.f32ToBf16(values[i]), dst.getAtIndex(Buf.S, i),
                    "float bits 0x" + Integer.toHexString(Float.floatToRawIntBits(values[i])));
        }
    }
}
