package dev.tally.engine.memory;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.TestArenas;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Views share their storage: shapes of transposes, reshapes, slices and expansions, and the views that are refused. */
class TensorViewsTest {

    @Test
    void viewsCheckBoundsAndReshapeOnlyWhenLegal() {
        try (MemoryArena arena = TestArenas.open(Device.CPU, 4096)) {
            Tensor t = arena.allocate("t", DType.F32, 4, 6);
            assertEquals(Shape.of(6, 4), t.t().shape());
            assertEquals(Shape.of(2, 12), t.reshape(2, -1).shape());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.t().reshape(24));
            assertTrue(e.getMessage().contains("non-contiguous"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.slice(1, 2, 7));
            assertThrows(IllegalArgumentException.class, () -> t.reshape(5, 5));
            assertEquals(Shape.of(3, 4, 6), t.unsqueeze(0).expand(Shape.of(3, 4, 6)).shape());
        }
    }

    @Test
    void aSliceReadsItsColumnsOfTheParent() {
        try (MemoryArena arena = TestArenas.open(Device.CPU, 4096)) {
            double[] all = new double[24];
            for (int i = 0; i < all.length; i++) all[i] = i;
            Tensor x = arena.allocate("x", DType.F32, 4, 6).copyFrom(all);
            Tensor slice = x.slice(1, 2, 5);
            assertArrayEquals(new int[]{4, 3}, slice.dims());
            double[] expect = new double[12];
            for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) expect[i * 3 + j] = all[i * 6 + j + 2];
            assertArrayEquals(expect, slice.toDoubleArray(), 0.0);
        }
    }
}
