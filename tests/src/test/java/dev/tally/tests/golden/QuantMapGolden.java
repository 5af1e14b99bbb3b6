package dev.tally.tests.golden;

import dev.tally.engine.io.SafeTensors;
import dev.tally.optim.DynamicMap;

/** kind = quant_map: our dynamic code maps must equal bitsandbytes' bit for bit. */
final class QuantMapGolden {
    private QuantMapGolden() {}

    static void check(SafeTensors.File f) {
        compare(f.floats("signed"), DynamicMap.create(true), "signed");
        compare(f.floats("unsigned"), DynamicMap.create(false), "unsigned");
    }

    private static void compare(float[] expected, float[] actual, String which) {
        if (expected.length != actual.length) throw new AssertionError(which + " map: " + actual.length + " entries, expected " + expected.length);
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                throw new AssertionError(which + " map entry " + i + ": " + actual[i] + " != " + expected[i]);
            }
        }
    }
}
