package dev.tally.engine.testing;

import dev.tally.engine.Backends;
import dev.tally.engine.Device;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.util.stream.Stream;

/**
 * Devices op tests run on: CPU always, and CUDA listed always so that on a machine without a GPU its cases show up as
 * skipped with a reason (call {@link #assumeUsable(Device)} first thing in a parameterized test). With
 * {@code -Dtally.require.cuda=true} (the GPU round sets it) a CUDA backend that does not start is a test failure
 * carrying the start's exception, never a skip: a missing library must not read as "0 failures".
 *
 * <pre>{@code
 * @ParameterizedTest @MethodSource("dev.tally.engine.testing.TestDevices#all")
 * void adds(Device device) { TestDevices.assumeUsable(device); ... }
 * }</pre>
 */
public final class TestDevices {
    private TestDevices() {}

    /** CPU and cuda:0. */
    public static Stream<Device> all() {
        return Stream.of(Device.CPU, Device.cuda(0));
    }

    /** The system property that turns an unusable CUDA device from a skip into a failure. */
    public static final String REQUIRE_CUDA = "tally.require.cuda";

    /**
     * Skips (JUnit assumption) when the device cannot be used on this machine, saying why; fails instead, with the
     * backend's start failure as the cause, when {@code -Dtally.require.cuda=true}.
     */
    public static void assumeUsable(Device device) {
        if (!(device instanceof Device.Cuda)) return;
        RuntimeException problem = Backends.cudaProblem().orElse(null);
        if (problem == null) return;
        if (Boolean.getBoolean(REQUIRE_CUDA)) {
            Assertions.fail("CUDA is required (-D" + REQUIRE_CUDA + "=true) but the backend did not start: " + problem, problem);
        }
        Assumptions.abort("no usable CUDA device on this machine: " + problem.getMessage());
    }
}
