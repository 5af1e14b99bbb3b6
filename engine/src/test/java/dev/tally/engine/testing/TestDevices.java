package dev.tally.engine.testing;

import dev.tally.engine.Backends;
import dev.tally.engine.Device;
import org.junit.jupiter.api.Assumptions;

import java.util.stream.Stream;

/**
 * Devices op tests run on: CPU always, and CUDA listed always so that on a machine without a GPU its cases show up as
 * skipped with a reason (call {@link #assumeUsable(Device)} first thing in a parameterized test).
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

    /** Skips (JUnit assumption) when the device cannot be used on this machine, saying why. */
    public static void assumeUsable(Device device) {
        if (device instanceof Device.Cuda) {
            Assumptions.assumeTrue(Backends.cudaAvailable(), () -> "no usable CUDA device on this machine: " + cudaProblem());
        }
    }

    private static String cudaProblem() {
        try {
            Backends.of(Device.cuda(0));
            return "(none)";
        } catch (RuntimeException | LinkageError e) {
            return e.getMessage();
        }
    }
}
