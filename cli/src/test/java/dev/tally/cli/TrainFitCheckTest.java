package dev.tally.cli;

import dev.tally.engine.Device;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** `tally train` refuses a plan larger than the device's free memory; on CUDA that figure is cudaMemGetInfo's free. */
class TrainFitCheckTest {

    @Test void cudaAvailabilityIsTheDevicesFreeMemory() {
        List<Device> asked = new ArrayList<>();
        long free = 3L << 30;
        assertEquals(free, TrainCommand.availableBytes(Device.cuda(1), d -> { asked.add(d); return free; }));
        assertEquals(List.of(Device.cuda(1)), asked, "asked the device the run uses");
        assertTrue(TrainCommand.availableBytes(Device.CPU, d -> fail("the CPU does not ask CUDA")) > 0);
    }

    @Test void aPlanLargerThanTheFreeMemoryIsRefusedWithTheNumbers() {
        long free = 2_000_000_000L;
        long available = TrainCommand.availableBytes(Device.cuda(0), d -> free);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TrainCommand.refuseIfTooBig(free + 1, Device.cuda(0), available));
        assertTrue(e.getMessage().contains("2,000,000,001 B") && e.getMessage().contains("cuda:0 has 2,000,000,000 B"), e.getMessage());
        assertDoesNotThrow(() -> TrainCommand.refuseIfTooBig(free, Device.cuda(0), available), "exactly fitting is fine");
    }
}
