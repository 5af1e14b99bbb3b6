package dev.tally.engine.testing;

import java.util.ArrayList;
import java.util.List;

/**
 * bitsandbytes' {@code create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)}: the 256-entry sorted code book
 * of 8-bit dynamic quantization, for tests (values computed in double, then rounded to float).
 */
public final class DynamicMap {
    private DynamicMap() {}

    public static float[] create(boolean signed) {
        List<Double> data = new ArrayList<>();
        int nonSignBits = 7;
        for (int i = 0; i < nonSignBits; i++) {
            int k = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            double[] b = new double[k];
            for (int j = 0; j < k; j++) b[j] = 0.1 + 0.9 * j / (k - 1);
            double scale = Math.pow(10, -(nonSignBits - 1) + i);
            for (int j = 0; j + 1 < k; j++) {
                double mean = (b[j] + b[j + 1]) / 2;
                data.add(scale * mean);
                if (signed) data.add(-scale * mean);
            }
        }
        data.add(0.0);
        data.add(1.0);
        while (data.size() < 256) data.add(0.0);
        float[] code = new float[256];
        for (int i = 0; i < 256; i++) code[i] = data.get(i).floatValue();
        java.util.Arrays.sort(code);
        return code;
    }
}
