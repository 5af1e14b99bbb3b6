package dev.tally.engine.cuda;

import dev.tally.engine.Backends;
import dev.tally.engine.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** Library discovery and the message a machine without a usable GPU stack gets. Runs everywhere. */
class CudaLibrariesTest {

    @Test void searchOrderIsOverrideThenLdLibraryPathThenToolkitThenWheels(@TempDir Path tmp) throws Exception {
        Path venv = tmp.resolve("venv");
        Path cu13 = Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia/cu13/lib"));
        Path cublas = Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia/cublas/lib"));
        Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia/cudnn")); // no lib/: not listed
        Map<String, String> env = Map.of("TALLY_CUDA_LIBDIR", "/env/override", "LD_LIBRARY_PATH", "/ld/one:/ld/two");
        Map<String, String> props = Map.of("tally.cuda.libdir", "/prop/override");
        List<Path> dirs = CudaLibraries.searchPath(env::get, props::get, List.of(venv));
        assertEquals(List.of(Path.of("/prop/override"), Path.of("/env/override"), Path.of("/ld/one"), Path.of("/ld/two"),
                Path.of("/usr/local/cuda/lib64"), cu13, cublas), dirs);
    }

    @Test void unresolvedMavenPropertyIsNotAFolder() {
        Map<String, String> props = Map.of("tally.cuda.libdir", "${env.TALLY_CUDA_LIBDIR}");
        List<Path> dirs = CudaLibraries.searchPath(k -> null, props::get, List.of());
        assertEquals(List.of(Path.of("/usr/local/cuda/lib64")), dirs);
    }

    @Test void virtualEnvAndCondaPrefixAreSearchedToo(@TempDir Path tmp) throws Exception {
        Path conda = Files.createDirectories(tmp.resolve("conda/lib/python3.11/site-packages/nvidia/cusolver/lib"));
        Map<String, String> env = Map.of("CONDA_PREFIX", tmp.resolve("conda").toString());
        assertTrue(CudaLibraries.searchPath(env::get, k -> null, List.of()).contains(conda));
    }

    @Test void firstFolderHoldingTheSonameWins(@TempDir Path tmp) throws Exception {
        Path a = Files.createDirectories(tmp.resolve("a")), b = Files.createDirectories(tmp.resolve("b"));
        Files.writeString(b.resolve("libcublas.so.13"), "");
        assertEquals(b.resolve("libcublas.so.13"), CudaLibraries.find("libcublas.so.13", List.of(a, b)).orElseThrow());
        Files.writeString(a.resolve("libcublas.so.13"), "");
        assertEquals(a.resolve("libcublas.so.13"), CudaLibraries.find("libcublas.so.13", List.of(a, b)).orElseThrow());
        assertTrue(CudaLibraries.find("libcusolver.so.12", List.of(a, b)).isEmpty());
    }

    @Test void messageNamesTheMissingLibrariesAndEveryFolderSearched() {
        String msg = CudaLibraries.unavailableMessage(List.of("libcuda.so.1", "libcublas.so.13"),
                List.of(Path.of("/x/lib"), Path.of("/usr/local/cuda/lib64")));
        assertTrue(msg.contains("libcuda.so.1, libcublas.so.13"), msg);
        assertTrue(msg.contains("/x/lib, /usr/local/cuda/lib64"), msg);
        assertTrue(msg.contains("TALLY_CUDA_LIBDIR"), msg);
    }

    @Test void withoutAGpuTheBackendFailsWithOneClearMessageAndAutoFallsBackToCpu() {
        assumeFalse(Backends.cudaAvailable(), "skipped: this machine has a usable GPU");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new CudaBackend(Device.cuda(0)));
        String msg = e.getMessage();
        // either a library is missing (the message lists where it looked) or they loaded and the GPU/driver is absent
        assertTrue(msg.contains("searched") && msg.contains("/usr/local/cuda/lib64") || msg.contains("cudaGetDeviceCount returned cudaError"),
                msg);
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true));
        try {
            assertEquals(Device.CPU, Backends.resolve("auto"));
        } finally {
            System.setErr(err);
        }
        assertTrue(captured.toString().contains("no usable CUDA device"), captured.toString());
    }

    @Test void onlyCudaDevicesAreAccepted() {
        assertThrows(IllegalArgumentException.class, () -> new CudaBackend(Device.CPU));
    }
}
