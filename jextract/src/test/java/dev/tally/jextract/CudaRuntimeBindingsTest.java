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

    /** CUDA 12's libcudart exports cudaGetDeviceProperties_v2 (the 12 struct) beside the CUDA 11 plain name; 13 only the plain one. */
    @Test void cuda12AliasIsPreferredWhereExportedAndThePlainNameOtherwise() {
        MemorySegment plain = MemorySegment.ofAddress(0x1000), v2 = MemorySegment.ofAddress(0x2000);
        SymbolLookup cuda12 = name -> switch (name) {
            case "cudaGetDeviceProperties" -> java.util.Optional.of(plain);
            case "cudaGetDeviceProperties_v2" -> java.util.Optional.of(v2);
            default -> java.util.Optional.empty();
        };
        SymbolLookup cuda13 = name -> name.equals("cudaGetDeviceProperties") ? java.util.Optional.of(plain) : java.util.Optional.empty();
        assertEquals(v2, Libraries.address(cuda12, "cudaGetDeviceProperties").orElseThrow());
        assertEquals(plain, Libraries.address(cuda13, "cudaGetDeviceProperties").orElseThrow());
        // cublas_v2.h names resolve to the plain export when only that exists
        SymbolLookup oldBlas = name -> name.equals("cublasCreate") ? java.util.Optional.of(plain) : java.util.Optional.empty();
        assertEquals(plain, Libraries.address(oldBlas, "cublasCreate_v2").orElseThrow());
        assertEquals(java.util.List.of("cudaLaunchKernel"), Libraries.missing(cuda13, java.util.List.of("cudaGetDeviceProperties", "cudaLaunchKernel")));
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
