package dev.tally.engine.testing;

import dev.tally.engine.Backends;
import dev.tally.engine.Device;
import org.junit.jupiter.api.Assumptions;

import java.util.List;

/**
 * Devices op tests run on: CPU always, CUDA too (the same expectations). Without a GPU the CUDA cases are reported as
 * skipped with the reason, not silently dropped.
 */
public final class TestDevices {
    private TestDevices() {}

    public static List<Device> all() {
        return List.of(Device.CPU, Device.cuda(0));
    }

    /** Call first in a device-parameterized test: skips (visibly) when the device cannot run here. */
    public static void assumeAvailable(Device d) {
        if (d instanceof Device.Cuda) {
            Assumptions.assumeTrue(Backends.cudaAvailable(), "no usable CUDA device on this machine: CUDA case skipped");
        }
    }
}
