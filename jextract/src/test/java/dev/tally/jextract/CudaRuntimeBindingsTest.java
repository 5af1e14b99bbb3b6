package dev.tally.jextract;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The runtime bindings against the real libcudart.so.13, where the toolkit is installed (no GPU needed). */
class CudaRuntimeBindingsTest {
    private static final Path CUDART = Path.of("/usr/local/cuda/lib64/libcudart.so.13");

    private static void bindCudart() {
        assumeTrue(Files.exists(CUDART), "skipped: " + CUDART + " is not installed on this machine");
        Libraries.bind(cuda_runtime_api_h.LIBRARY, SymbolLookup.libraryLookup(CUDART, Arena.global()));
    }

    @Test void everyRuntimeSymbolResolves() {
        bindCudart();
        for (String s : cuda_runtime_api_h.SYMBOLS) {
            assertTrue(Libraries.find(cuda_runtime_api_h.LIBRARY, s).isPresent(), s + " missing from " + CUDART);
        }
    }

    @Test void errorStringsComeFromTheLibrary() {
        bindCudart();
        MemorySegment name = cuda_runtime_api_h.cudaGetErrorName(cuda_runtime_api_h.cudaErrorNoDevice);
        assertEquals("cudaErrorNoDevice", name.reinterpret(256).getString(0));
        MemorySegment ok = cuda_runtime_api_h.cudaGetErrorName(cuda_runtime_api_h.cudaSuccess);
        assertEquals("cudaSuccess", ok.reinterpret(256).getString(0));
    }

    @Test void runtimeVersionIsThirteen() {
        bindCudart();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
            assertEquals(0, cuda_runtime_api_h.cudaRuntimeGetVersion(v));
            assertEquals(13000, v.get(ValueLayout.JAVA_INT, 0) / 1000 * 1000);
        }
    }

    @Test void deviceCountReportsAnErrorOrADeviceInsteadOfCrashing() {
        bindCudart();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(ValueLayout.JAVA_INT);
            int rc = cuda_runtime_api_h.cudaGetDeviceCount(n);
            if (rc == cuda_runtime_api_h.cudaSuccess) {
                assertTrue(n.get(ValueLayout.JAVA_INT, 0) >= 1, "success with no devices");
            } else {
                String err = cuda_runtime_api_h.cudaGetErrorName(rc).reinterpret(256).getString(0);
                assertTrue(err.startsWith("cudaError"), err);
            }
        }
    }

    @Test void unboundLibraryFailsWithAClearMessage() {
        assumeTrue(!Libraries.isBound(cublas_api_h.LIBRARY), "skipped: cuBLAS was bound by another test");
        Throwable t = assertThrows(Throwable.class, () -> cublas_api_h.cublasGetStatusName(0));
        Throwable root = t;
        while (root.getCause() != null) root = root.getCause();
        assertTrue(root.getMessage().contains("'cublas' is not loaded"), root.getMessage());
    }

    @Test void dim3IsTwelveBytes() {
        assertEquals(12, dim3.layout().byteSize());
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = dim3.allocate(a, 7, 8, 9);
            assertEquals(8, dim3.y(d));
        }
    }
}
