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

    private static Path touch(Path dir, String... names) throws Exception {
        Files.createDirectories(dir);
        for (String n : names) Files.writeString(dir.resolve(n), "");
        return dir;
    }

    @Test void theWholeSetComesFromTheFirstLocationHoldingAllOfIt(@TempDir Path tmp) throws Exception {
        // a stray cudart and cublas first on the path (another toolkit's), the complete set later
        Path partial = touch(tmp.resolve("partial"), "libcudart.so.13", "libcublas.so.13");
        Path full = touch(tmp.resolve("full"), "libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcusolver.so.12",
                "libnvJitLink.so.13");
        var sel = CudaLibraries.select(List.of(CudaLibraries.Location.of(partial), CudaLibraries.Location.of(full))).orElseThrow();
        assertEquals(13, sel.set().cuda());
        assertEquals(full.resolve("libcudart.so.13"), sel.files().get("libcudart.so.13"), "not the first cudart on the path");
        assertEquals(full.resolve("libcublas.so.13"), sel.files().get("libcublas.so.13"));
        assertEquals(full.resolve("libnvJitLink.so.13"), sel.files().get("libnvJitLink.so.13"), "optional ones from the same folder");
        assertFalse(sel.files().containsKey("libcusparse.so.12"), "absent optional library");
    }

    @Test void aPytorchCu12InstallIsOneLocationAcrossItsWheelFolders(@TempDir Path tmp) throws Exception {
        Path nvidia = tmp.resolve("venv/lib/python3.11/site-packages/nvidia");
        touch(nvidia.resolve("cuda_runtime/lib"), "libcudart.so.12");
        touch(nvidia.resolve("cublas/lib"), "libcublas.so.12", "libcublasLt.so.12");
        touch(nvidia.resolve("cusolver/lib"), "libcusolver.so.11");
        touch(nvidia.resolve("cusparse/lib"), "libcusparse.so.12");
        List<CudaLibraries.Location> locs = CudaLibraries.locations(k -> null, k -> null, List.of(tmp.resolve("venv")));
        var sel = CudaLibraries.select(locs).orElseThrow();
        assertEquals(12, sel.set().cuda());
        assertEquals(nvidia.resolve("cusolver/lib/libcusolver.so.11"), sel.files().get("libcusolver.so.11"));
        assertEquals(nvidia.resolve("cusparse/lib/libcusparse.so.12"), sel.files().get("libcusparse.so.12"));
    }

    @Test void cuda13IsPreferredWithinALocationAndMixedVersionsAreNoSet(@TempDir Path tmp) throws Exception {
        Path both = touch(tmp.resolve("both"), "libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcusolver.so.12",
                "libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12", "libcusolver.so.11");
        assertEquals(13, CudaLibraries.select(List.of(CudaLibraries.Location.of(both))).orElseThrow().set().cuda());
        Path mixed = touch(tmp.resolve("mixed"), "libcudart.so.13", "libcublasLt.so.12", "libcublas.so.12", "libcusolver.so.11");
        assertTrue(CudaLibraries.select(List.of(CudaLibraries.Location.of(mixed))).isEmpty());
    }

    @Test void messageSaysWhatEachLocationLacked(@TempDir Path tmp) throws Exception {
        Path partial = touch(tmp.resolve("partial"), "libcudart.so.13", "libcublasLt.so.13");
        Path cu12 = touch(tmp.resolve("cu12"), "libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12");
        Path none = Files.createDirectories(tmp.resolve("none"));
        String msg = CudaLibraries.unavailableMessage(List.of(CudaLibraries.Location.of(partial), CudaLibraries.Location.of(cu12),
                CudaLibraries.Location.of(none)), "CUDA 13 lacks libcudart.so.13");
        assertTrue(msg.contains(partial + " has CUDA 13 libraries but lacks libcublas.so.13, libcusolver.so.12"), msg);
        assertTrue(msg.contains(cu12 + " has CUDA 12 libraries but lacks libcusolver.so.11"), msg);
        assertTrue(msg.contains("searched " + none + " (none there)"), msg);
        assertTrue(msg.contains("TALLY_CUDA_LIBDIR") && msg.contains("system loader: CUDA 13 lacks"), msg);
    }

    @Test void withoutAGpuTheBackendFailsWithOneClearMessageAndAutoFallsBackToCpu() {
        assumeFalse(Backends.cudaAvailable(), "skipped: this machine has a usable GPU");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new CudaBackend(Device.cuda(0)));
        String msg = e.getMessage();
        // either a library is missing (the message lists where it looked) or they loaded and the GPU/driver is absent
        assertTrue(msg.contains("libcuda.so.1 not found") || msg.contains("CUDA libraries not found: no location holds")
                        && msg.contains("/usr/local/cuda/lib64") || msg.contains("cudaGetDeviceCount returned cudaError"), msg);
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
