package dev.tally.tests.golden;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;

import java.util.List;

/**
 * kind = weight_quant: Q-GaLore's int8 weight quantization (round to nearest, stochastic with the reference's random
 * numbers injected, and one update's dequantize + add + stochastic re-quantization) replayed through
 * {@link dev.tally.engine.Ops#quantizeGroups}: codes equal, scales and zero points equal in float32.
 */
final class WeightQuantGolden {
    private WeightQuantGolden() {}

    static void check(SafeTensors.File f) {
        String mode = f.metadata().get("mode");
        int g = Integer.parseInt(f.metadata().get("group_size"));
        List<?> dims = (List<?>) Json.parse(f.metadata().get("shape"));
        Shape shape = Shape.of(dims.stream().mapToInt(o -> ((Number) o).intValue()).toArray());
        try (MemoryArena arena = new MemoryArena(new MemoryLedger(), "golden", MemoryCategory.OTHER, Device.CPU, 16L * shape.numel() + (1 << 16))) {
            QuantizedTensor q = QuantizedTensor.allocate(arena, "q", shape, 8, g);
            Tensor w = arena.allocate("w", DType.F32, shape);
            switch (mode) {
                case "round" -> {
                    w.copyFrom(f.floats("w"));
                    q.quantize(w, GroupRounding.NEAREST);
                }
                case "stochastic" -> {
                    w.copyFrom(f.floats("w"));
                    q.quantize(w, new GroupRounding.Given(arena.allocate("r", DType.F32, shape).copyFrom(f.floats("r"))));
                }
                case "update" -> {
                    QuantizedTensor q0 = QuantizedTensor.allocate(arena, "q0", shape, 8, g);
                    q0.codes().copyFrom(f.longs("q0"));
                    q0.scales().copyFrom(f.floats("scales0"));
                    q0.zeros().copyFrom(f.floats("zeros0"));
                    q0.dequantize(w);
                    Tensor update = arena.allocate("update", DType.F32, shape).copyFrom(f.floats("update"));
                    w.ops().binary(BinaryOp.ADD, w, update, w);
                    equalFloats(f.floats("w1"), w.toFloatArray(), "w1 (dequantized + update)", f);
                    q.quantize(w, new GroupRounding.Given(arena.allocate("r", DType.F32, shape).copyFrom(f.floats("r"))));
                }
                default -> throw new AssertionError(f.path() + ": unknown weight_quant mode '" + mode + "'");
            }
            long[] expected = f.longs("q"), actual = q.codes().toLongArray();
            for (int i = 0; i < expected.length; i++) {
                if (expected[i] != actual[i]) {
                    throw new AssertionError(f.path().getFileName() + ": code " + i + " (group " + i / g + ") is " + actual[i]
                            + ", the reference has " + expected[i]);
                }
            }
            equalFloats(f.floats("scales"), q.scales().toFloatArray(), "scales", f);
            equalFloats(f.floats("zeros"), q.zeros().toFloatArray(), "zeros", f);
        }
    }

    private static void equalFloats(float[] expected, float[] actual, String what, SafeTensors.File f) {
        if (expected.length != actual.length) throw new AssertionError(what + ": " + actual.length + " values, expected " + expected.length);
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                throw new AssertionError(f.path().getFileName() + ": " + what + "[" + i + "] = " + actual[i] + ", the reference has " + expected[i]);
            }
        }
    }
}
