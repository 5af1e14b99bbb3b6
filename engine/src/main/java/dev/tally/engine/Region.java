package dev.tally.engine;

import java.lang.foreign.MemorySegment;

/**
 * One contiguous block of device memory backing one arena (a single allocation: FFM on the CPU, one cudaMalloc on a GPU,
 * nothing at all on META). Only the backend that made it interprets it.
 */
public interface Region extends AutoCloseable {
    long byteSize();

    /** Host-addressable memory (CPU only); other devices throw. */
    MemorySegment segment();

    /** Raw base address (device pointer on CUDA, 0 on META). */
    long address();

    @Override void close();
}
