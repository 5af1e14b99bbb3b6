package dev.tally.engine.cuda;

import dev.tally.jextract.cuda_runtime_api_h;
import dev.tally.jextract.dim3;
import dev.tally.nativekernels.KernelResources;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The kernels of the tally-native jar: the fatbin loaded with cudaLibraryLoadData, every entry point resolved (and
 * loaded into the context, so lazy module loading cannot book memory later), and launches on the backend's stream.
 */
final class CudaKernels implements AutoCloseable {
    private final MemorySegment library;
    private final Map<String, MemorySegment> kernels = new HashMap<>();
    private final MemorySegment stream;
    /** Names of the most recent launches since the last synchronize, for naming asynchronous failures. */
    private final ArrayDeque<String> recent = new ArrayDeque<>();

    CudaKernels(MemorySegment stream) {
        this.stream = stream;
        byte[] fatbin = resource(KernelResources.FATBIN);
        byte[] list = resource(KernelResources.KERNEL_LIST);
        if (fatbin == null || list == null) {
            throw new IllegalStateException("the tally-native jar on the class path has no CUDA kernels ("
                    + KernelResources.FATBIN + "): it was built without nvcc; rebuild native/ on a machine with the CUDA toolkit");
        }
        MemorySegment code = Arena.global().allocate(fatbin.length, 16); // kept: the library may refer to its image
        code.copyFrom(MemorySegment.ofArray(fatbin));
        library = load(code);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment attrs = a.allocate(cuda_runtime_api_h.sizeof_cudaFuncAttributes, 8);
            for (String name : new String(list, StandardCharsets.UTF_8).lines().filter(s -> !s.isBlank()).toList()) {
                MemorySegment k = Cuda.outPointer("cudaLibraryGetKernel(" + name + ")",
                        p -> cuda_runtime_api_h.cudaLibraryGetKernel(p, library, a.allocateFrom(name)));
                // loads the kernel into the current context now rather than at its first launch; should a driver refuse
                // this for a library kernel, the launch loads it later and the ledger shows it as lazily loaded
                if (cuda_runtime_api_h.cudaFuncGetAttributes(attrs, k) != cuda_runtime_api_h.cudaSuccess) {
                    cuda_runtime_api_h.cudaGetLastError();
                }
                kernels.put(name, k);
            }
        } catch (RuntimeException | Error e) {
            cuda_runtime_api_h.cudaLibraryUnload(library); // a failed start leaves no library loaded
            throw e;
        }
    }

    /**
     * cudaLibraryLoadData, with a failure that says which toolkit built the fatbin and which CUDA the driver supports:
     * a driver older than the nvcc that built the kernels (a CUDA 12 driver, kernels from nvcc 13) cannot load them.
     */
    private static MemorySegment load(MemorySegment code) {
        try {
            return Cuda.outPointer("cudaLibraryLoadData(tally_kernels.fatbin)", p -> cuda_runtime_api_h.cudaLibraryLoadData(
                    p, code, MemorySegment.NULL, MemorySegment.NULL, 0, MemorySegment.NULL, MemorySegment.NULL, 0));
        } catch (CudaException e) {
            int driver = Cuda.outInt("cudaDriverGetVersion", cuda_runtime_api_h::cudaDriverGetVersion);
            throw new IllegalStateException(loadFailure(e.getMessage(), buildInfo(), driver), e);
        }
    }

    /** The message for a fatbin the driver refused: the build's nvcc and archs against the driver's CUDA version. */
    static String loadFailure(String error, java.util.Properties build, int driverVersion) {
        String nvcc = build.getProperty("nvcc", "?"), archs = build.getProperty("archs", "?");
        String driver = driverVersion / 1000 + "." + driverVersion % 1000 / 10;
        StringBuilder sb = new StringBuilder("the GPU driver refused Tally's kernels: ").append(error)
                .append(". tally_kernels.fatbin was built by nvcc ").append(nvcc).append(" for ").append(archs)
                .append("; the driver supports CUDA ").append(driver).append('.');
        int nvccMajor = parseMajor(nvcc);
        if (nvccMajor > driverVersion / 1000) {
            sb.append(" A CUDA ").append(driverVersion / 1000).append(" driver cannot load kernels from a CUDA ").append(nvccMajor)
                    .append(" toolkit: rebuild native/ with a CUDA ").append(driverVersion / 1000)
                    .append(" nvcc (NVCC=/path/to/nvcc ./mvnw -pl native package) or update the driver.");
        } else {
            sb.append(" Check that the GPU's architecture is one of ").append(archs).append(" or newer (PTX is JIT-compiled for newer GPUs).");
        }
        return sb.toString();
    }

    private static int parseMajor(String version) {
        try {
            return Integer.parseInt(version.split("\\.")[0]);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static java.util.Properties buildInfo() {
        java.util.Properties p = new java.util.Properties();
        byte[] b = resource(KernelResources.BUILD_INFO);
        if (b != null) {
            try {
                p.load(new java.io.ByteArrayInputStream(b));
            } catch (IOException e) {
                // no build info: the message says "?"
            }
        }
        return p;
    }

    private static byte[] resource(String name) {
        try {
            return KernelResources.read(name);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + name + " from the tally-native jar", e);
        }
    }

    int count() { return kernels.size(); }

    /** 1-D launch: {@code grid} blocks of {@code block} threads. */
    void launch(String name, long grid, int block, KernelArg... args) {
        launch(name, (int) Math.max(1, Math.min(grid, Integer.MAX_VALUE)), 1, 1, block, 1, args);
    }

    void launch(String name, int gx, int gy, int gz, int bx, int by, KernelArg... args) {
        MemorySegment k = kernels.get(name);
        if (k == null) throw new IllegalStateException("kernel " + name + " is not in tally_kernels.fatbin");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment argv = a.allocate(ValueLayout.ADDRESS, Math.max(1, args.length));
            for (int i = 0; i < args.length; i++) {
                MemorySegment slot = a.allocate(args[i].byteSize(), 8);
                args[i].writeTo(slot);
                argv.setAtIndex(ValueLayout.ADDRESS, i, slot);
            }
            int rc = cuda_runtime_api_h.cudaLaunchKernel(k, dim3.allocate(a, gx, gy, gz), dim3.allocate(a, bx, by, 1),
                    argv, 0L, stream);
            Cuda.check(rc, "cudaLaunchKernel(" + name + ")");
        }
        if (recent.size() == 8) recent.removeFirst();
        recent.addLast(name);
    }

    /** The recent launches, oldest first, and forgets them (called at each synchronize). */
    List<String> drainRecent() {
        List<String> out = List.copyOf(recent);
        recent.clear();
        return out;
    }

    @Override public void close() {
        cuda_runtime_api_h.cudaLibraryUnload(library);
    }
}
