package dev.tally.engine;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** A backend is started once; a failed start is remembered and rethrown, not retried. */
class BackendStartsTest {

    @Test void aFailedStartIsRememberedNotRetried() {
        AtomicInteger attempts = new AtomicInteger();
        BackendStarts starts = new BackendStarts(d -> {
            attempts.incrementAndGet();
            throw new IllegalStateException("cudaLibraryLoadData failed: CUDA_ERROR_NO_BINARY_FOR_GPU");
        });
        Device gpu = Device.cuda(0);
        IllegalStateException first = assertThrows(IllegalStateException.class, () -> starts.get(gpu));
        for (int i = 0; i < 3; i++) {
            assertSame(first, starts.failure(gpu).orElseThrow());
            assertSame(first, assertThrows(IllegalStateException.class, () -> starts.get(gpu)));
        }
        assertEquals(1, attempts.get(), "started once");
    }

    @Test void aLinkageErrorIsAFailedStartWithItsCause() {
        BackendStarts starts = new BackendStarts(d -> { throw new UnsatisfiedLinkError("symbol cudaGetDeviceProperties_v2 not found"); });
        RuntimeException e = starts.failure(Device.cuda(1)).orElseThrow();
        assertInstanceOf(UnsatisfiedLinkError.class, e.getCause());
        assertTrue(e.getMessage().contains("cuda:1") && e.getMessage().contains("cudaGetDeviceProperties_v2"), e.getMessage());
    }

    @Test void aStartedBackendIsReused() {
        AtomicInteger attempts = new AtomicInteger();
        BackendStarts starts = new BackendStarts(d -> {
            attempts.incrementAndGet();
            return new dev.tally.engine.meta.MetaBackend();
        });
        assertSame(starts.get(Device.META), starts.get(Device.META));
        assertTrue(starts.failure(Device.META).isEmpty());
        assertEquals(1, attempts.get());
    }
}
