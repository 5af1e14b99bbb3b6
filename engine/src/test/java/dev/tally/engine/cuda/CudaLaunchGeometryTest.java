package dev.tally.engine.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Launch shapes computed on the host (no GPU needed): within CUDA's grid limits and the reduction scratch. */
class CudaLaunchGeometryTest {

    @Test void fallbackGemmGridStaysWithinCudaLimitsBeyondAMillionRows() {
        // 1,048,561 rows = 65,536 row tiles: one more than gridDim.y allows; the kernel steps over the rest
        int[] g = CudaGemm.fallbackGrid(1_048_561, 64, 1);
        assertArrayEquals(new int[]{4, CudaGemm.MAX_GRID_YZ, 1}, g);
        assertArrayEquals(new int[]{1, 1, CudaGemm.MAX_GRID_YZ}, CudaGemm.fallbackGrid(3, 5, 100_000));
        assertArrayEquals(new int[]{2, 3, 7}, CudaGemm.fallbackGrid(40, 17, 7));
    }

    @Test void reduceAllUsesUpTo1024BlocksOfAtLeast1024Elements() {
        assertEquals(1, CudaOps.reduceAllBlocks(0));
        assertEquals(1, CudaOps.reduceAllBlocks(1024));
        assertEquals(2, CudaOps.reduceAllBlocks(1025));
        assertEquals(1024, CudaOps.reduceAllBlocks(1L << 30));
        // the partials (2 floats per block) fit the scratch
        assertTrue(2L * 4 * 1024 <= CudaBackend.REDUCTION_SCRATCH);
    }

    @Test void dweightChunksFitTheScratchAndTheGrid() {
        assertEquals(1, CudaOps.dweightChunks(32, 4096), "few rows: one chunk, no second stage");
        assertEquals(64, CudaOps.dweightChunks(8192, 4096), "scratch-bound: 64 × 4096 fp32 = 1 MiB");
        assertEquals(4, CudaOps.dweightChunks(100, 64));
        assertEquals(1, CudaOps.dweightChunks(1 << 20, 1 << 20), "a row wider than the scratch: direct");
        for (int n : new int[]{1, 64, 2304, 4096, 8192, 262_144}) {
            int c = CudaOps.dweightChunks(1 << 24, n);
            assertTrue(c >= 1 && c <= 65_535 && (c == 1 || 4L * c * n <= CudaBackend.REDUCTION_SCRATCH), n + ": " + c);
        }
    }
}
