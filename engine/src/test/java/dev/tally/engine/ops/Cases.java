package dev.tally.engine.ops;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Shape;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.provider.Arguments;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Parameter sets shared by the op tests: devices × float dtypes × layouts, and the shapes every op is tried on. */
final class Cases {
    private Cases() {}

    static final DType[] FLOATS = {DType.F32, DType.BF16, DType.F16};

    /** Scalars-in-a-box, a prime length, matrices with odd/prime sides, and a rank-3 with a size-1 dim. */
    static final Shape[] SHAPES = {Shape.of(1), Shape.of(7), Shape.of(3, 5), Shape.of(2, 1, 13), Shape.of(4, 3, 2)};

    static Stream<Arguments> devices() {
        return TestDevices.all().map(Arguments::of);
    }

    static Stream<Arguments> deviceDtypeLayout() {
        List<Arguments> out = new ArrayList<>();
        TestDevices.all().forEach(d -> {
            for (DType t : FLOATS) for (Layout l : Layout.values()) out.add(Arguments.of(d, t, l));
        });
        return out.stream();
    }

    static Stream<Arguments> deviceLayout() {
        List<Arguments> out = new ArrayList<>();
        TestDevices.all().forEach(d -> {
            for (Layout l : Layout.values()) out.add(Arguments.of(d, l));
        });
        return out.stream();
    }

    static Stream<Arguments> deviceDtype() {
        List<Arguments> out = new ArrayList<>();
        TestDevices.all().forEach(d -> {
            for (DType t : FLOATS) out.add(Arguments.of(d, t));
        });
        return out.stream();
    }

    static int numel(Shape s) {
        return Math.toIntExact(s.numel());
    }

    /** Tolerance for results stored in {@code dt} computed from exact inputs: a couple of units in the last place. */
    static double rtol(DType dt) {
        return switch (dt) {
            case F32 -> 2e-6;
            case BF16 -> 1.0 / 128;
            case F16 -> 1.0 / 1024;
            default -> 0;
        };
    }

    static Device cpu() { return Device.CPU; }
}
