package dev.tally.optim;

import java.util.Arrays;

/**
 * bitsandbytes' dynamic quantization code ({@code create_dynamic_map}, max_exponent_bits 7, total 8 bits): for each
 * decade 10^(i−6), i = 0..6, the midpoints of a float32 linspace(0.1, 1, k) (k = 2^i + 1 signed, 2^(i+1) + 1 unsigned),
 * mirrored for the signed map, plus 0 and 1.0, padded with zeros to 256 and sorted. Computed in float32 exactly as
 * PyTorch does, so the maps equal the reference's bit for bit (checked against the golden dynamic_map file).
 */
public final class DynamicMap {
    private DynamicMap() {}

    public static float[] create(boolean signed) {
        float[] data = new float[256];
        int n = 0;
        for (int i = 0; i < 7; i++) {
            int items = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] b = linspace(0.1f, 1.0f, items);
            float decade = (float) Math.pow(10, -6 + i);
            for (int j = 0; j + 1 < items; j++) {
                float mean = (b[j] + b[j + 1]) / 2.0f;
                data[n++] = decade * mean;
                if (signed) data[n++] = -(decade * mean);
            }
        }
        data[n++] = 0f;
        data[n++] = 1.0f; // the rest stays 0: padding
        Arrays.sort(data);
        return data;
    }

    /** Lanes of PyTorch's AVX2 float vector, which fixes how linspace rounds. */
    private static final int LANES = 8;

    /**
     * torch.linspace(start, end, steps) in float32 as PyTorch 1.13's CPU kernel computes it (the reference maps were
     * made with it): values come in chunks of two 8-lane vectors while at least 16 remain, each chunk from a base —
     * start + step·i before the halfway point, end − step·(steps − 1 − i) after it, decided per chunk — plus lane·step;
     * the remainder element-wise with the same two formulas. The compiler fuses the base's multiply-add (one rounding)
     * but not the lane offsets. Any other rounding order misses the reference by an ulp in a dozen entries.
     */
    static float[] linspace(float start, float end, int steps) {
        float[] out = new float[steps];
        float step = (end - start) / (steps - 1);
        int half = steps / 2;
        int i = 0;
        for (; i <= steps - 2 * LANES; i += 2 * LANES) {
            for (int v = i; v < i + 2 * LANES; v += LANES) {
                float base = v < half ? Math.fma(step, (float) v, start) : Math.fma(-step, (float) (steps - v - 1), end);
                for (int l = 0; l < LANES; l++) out[v + l] = base + (float) l * step;
            }
        }
        for (; i < steps; i++) {
            out[i] = i < half ? Math.fma(step, (float) i, start) : Math.fma(-step, (float) (steps - i - 1), end);
        }
        return out;
    }
}
