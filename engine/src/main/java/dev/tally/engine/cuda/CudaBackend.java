package dev.tally.engine.cuda;

import dev.tally.engine.Backend;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.Region;
import dev.tally.jextract.cublas_api_h;
import dev.tally.jextract.cuda_runtime_api_h;
import dev.tally.jextract.cusolverDn_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One CUDA device: its context, one non-blocking stream, the kernel library, a cuBLAS and a cuSOLVER handle with
 * their workspaces, and one cudaMalloc per arena. Every byte of device memory it causes is measured with
 * cudaMemGetInfo around the call that caused it, so {@link #reportRuntimeMemory} makes a ledger's total for this device
 * equal to the device's used memory (total − free), to the byte, while no other process uses the GPU.
 *
 * <p>Used from one thread at a time (like an arena); a call from a new thread first makes this device current there.
 */
public final class CudaBackend implements Backend {
    /** cuBLAS workspace: NVIDIA recommends 32 MiB on Hopper (4 MiB suffices before); one size keeps the plan simple. */
    static final long CUBLAS_WORKSPACE = 32L << 20;
    /** Bytes of {@link #reductionScratch()}: 1 MiB, 262,144 fp32 partials (see CudaOps' two-stage reductions). */
    static final long REDUCTION_SCRATCH = 1L << 20;

    private final Device.Cuda device;
    private final String name;
    private final int ccMajor, ccMinor;
    private final MemorySegment stream;
    private final CudaKernels kernels;
    private final MemorySegment cublas;
    private final MemorySegment cusolver;
    private final long cublasWorkspace;
    private final long errorWord;
    /** Partial results of two-stage reductions (reduceAll, RMSNorm's weight gradient): one fixed cudaMalloc. */
    private final long reductionScratch;
    private final CudaOps ops;
    private final boolean allowTf32 = Boolean.getBoolean("tally.cuda.tf32");

    /** Runtime memory by label, each measured as the drop in free memory around the call that caused it. */
    private final Map<String, Long> runtime = new LinkedHashMap<>();
    /** Device bytes held by cudaMalloc for arenas (measured) and the arenas' own capacities: the gap is granularity. */
    private long arenaMallocMeasured, arenaBytes;
    /** Growable cuSOLVER workspace (SVD): address and size. */
    private long solverWorkspace, solverWorkspaceBytes;
    private Thread current;
    /** Host waits for the stream so far ({@link #synchronize} calls): tests count them to show a loop issues none. */
    private long synchronizations;

    public CudaBackend(Device device) {
        if (!(device instanceof Device.Cuda c)) throw new IllegalArgumentException("CudaBackend needs a cuda device, got " + device);
        this.device = c;
        CudaLibraries.Located libs = CudaLibraries.bind();
        int count;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(ValueLayout.JAVA_INT);
            int rc = cuda_runtime_api_h.cudaGetDeviceCount(n);
            if (rc != cuda_runtime_api_h.cudaSuccess) {
                throw new IllegalStateException("CUDA " + libs.cuda() + " libraries found (" + libs.runtime()
                        + ") but no usable GPU: cudaGetDeviceCount returned " + Cuda.errorName(rc) + " (" + Cuda.errorString(rc) + ")");
            }
            count = n.get(ValueLayout.JAVA_INT, 0);
        }
        if (c.ordinal() >= count) {
            throw new IllegalArgumentException("device " + c + " does not exist: this machine has " + count + " CUDA device(s)");
        }
        Cuda.check(cuda_runtime_api_h.cudaSetDevice(c.ordinal()), "cudaSetDevice(" + c.ordinal() + ")");
        current = Thread.currentThread();
        Cuda.check(cuda_runtime_api_h.cudaFree(MemorySegment.NULL), "cudaFree(NULL) (context creation)");
        long[] info = Cuda.memInfo();
        runtime.put(label("context"), info[1] - info[0]); // everything in use once our context exists

        try (Arena a = Arena.ofConfined()) {
            // CUDA 13's struct is 1008 B, CUDA 12's (cudaGetDeviceProperties_v2) larger: 4 KiB holds either; name, major and
            // minor sit at the same offsets in both (CUDA 13 dropped clockRate, which filled padding)
            MemorySegment prop = a.allocate(Math.max(4096, cuda_runtime_api_h.sizeof_cudaDeviceProp), 8);
            Cuda.check(cuda_runtime_api_h.cudaGetDeviceProperties(prop, c.ordinal()), "cudaGetDeviceProperties");
            name = prop.getString(cuda_runtime_api_h.offsetof_cudaDeviceProp_name);
            ccMajor = prop.get(ValueLayout.JAVA_INT, cuda_runtime_api_h.offsetof_cudaDeviceProp_major);
            ccMinor = prop.get(ValueLayout.JAVA_INT, cuda_runtime_api_h.offsetof_cudaDeviceProp_minor);
        }
        if (ccMajor < 8) {
            throw new IllegalStateException(c + " (" + name + ") has compute capability " + ccMajor + "." + ccMinor
                    + "; Tally's kernels need 8.0 or newer (bf16)");
        }

        // Everything below is released again, newest first, should a later step fail (StartupUndo).
        StartupUndo undo = new StartupUndo();
        try {
            long before = free();
            stream = Cuda.outPointer("cudaStreamCreateWithFlags", p -> cuda_runtime_api_h.cudaStreamCreateWithFlags(p,
                    cuda_runtime_api_h.cudaStreamNonBlocking));
            undo.created("stream", () -> cuda_runtime_api_h.cudaStreamDestroy(stream));
            kernels = new CudaKernels(stream);
            undo.created("kernel library", kernels::close);
            runtime.put(label("stream + kernel module"), before - free());

            before = free();
            cublas = blasHandle();
            undo.created("cublas handle", () -> cublas_api_h.cublasDestroy_v2(cublas));
            Cuda.checkBlas(cublas_api_h.cublasSetStream_v2(cublas, stream), "cublasSetStream");
            // fp32 accumulation always: no reduced-precision split-K reductions for bf16 outputs
            Cuda.checkBlas(cublas_api_h.cublasSetMathMode(cublas, cublas_api_h.CUBLAS_DEFAULT_MATH
                    | cublas_api_h.CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION), "cublasSetMathMode");
            runtime.put(label("cublas handle"), before - free());

            before = free();
            cublasWorkspace = malloc(CUBLAS_WORKSPACE, "cublas workspace");
            undo.created("cublas workspace", () -> cuda_runtime_api_h.cudaFree(MemorySegment.ofAddress(cublasWorkspace)));
            Cuda.checkBlas(cublas_api_h.cublasSetWorkspace_v2(cublas, MemorySegment.ofAddress(cublasWorkspace), CUBLAS_WORKSPACE),
                    "cublasSetWorkspace");
            runtime.put(label("cublas workspace"), before - free());

            before = free();
            cusolver = solverHandle();
            undo.created("cusolver handle", () -> cusolverDn_h.cusolverDnDestroy(cusolver));
            Cuda.checkSolver(cusolverDn_h.cusolverDnSetStream(cusolver, stream), "cusolverDnSetStream");
            runtime.put(label("cusolver handle"), before - free());

            before = free();
            errorWord = malloc(16, "error word");
            undo.created("error word", () -> cuda_runtime_api_h.cudaFree(MemorySegment.ofAddress(errorWord)));
            // on our stream: a non-blocking stream does not wait for work on the legacy default stream
            Cuda.check(cuda_runtime_api_h.cudaMemsetAsync(MemorySegment.ofAddress(errorWord), 0, 16, stream), "cudaMemsetAsync(error word)");
            Cuda.check(cuda_runtime_api_h.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
            runtime.put(label("error word"), before - free());

            before = free();
            reductionScratch = malloc(REDUCTION_SCRATCH, "reduction scratch");
            undo.created("reduction scratch", () -> cuda_runtime_api_h.cudaFree(MemorySegment.ofAddress(reductionScratch)));
            runtime.put(label("reduction scratch"), before - free());

            ops = new CudaOps(this);
            undo.commit();
        } catch (RuntimeException | Error e) {
            cuda_runtime_api_h.cudaDeviceSynchronize(); // nothing queued may still use what is released
            undo.unwind(e);
            throw e;
        }
    }

    private String label(String what) { return device + " " + what; }

    private static MemorySegment blasHandle() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.checkBlas(cublas_api_h.cublasCreate_v2(p), "cublasCreate");
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    private static MemorySegment solverHandle() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.checkSolver(cusolverDn_h.cusolverDnCreate(p), "cusolverDnCreate");
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    private static long free() { return Cuda.memInfo()[0]; }

    /** Free device memory as cudaMemGetInfo reports it now. */
    @Override public long availableBytes() { return free(); }

    private static long malloc(long bytes, String what) {
        return Cuda.outPointer("cudaMalloc(" + bytes + " B for " + what + ")", p -> cuda_runtime_api_h.cudaMalloc(p, bytes)).address();
    }

    @Override public Device device() { return device; }

    @Override public Ops ops() { return ops; }

    /** The GPU's name and compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)". */
    public String describe() { return name + " (sm_" + ccMajor + ccMinor + ")"; }

    /** Whether fp32 GEMMs may use TF32 tensor cores (off unless asked: -Dtally.cuda.tf32=true). */
    boolean allowTf32() { return allowTf32; }

    /** Makes this device current on the calling thread (the CUDA runtime's current device is per thread). */
    void enter() {
        Thread t = Thread.currentThread();
        if (t != current) {
            Cuda.check(cuda_runtime_api_h.cudaSetDevice(device.ordinal()), "cudaSetDevice(" + device.ordinal() + ")");
            current = t;
        }
    }

    MemorySegment stream() { return stream; }
    CudaKernels kernels() { return kernels; }
    MemorySegment cublas() { return cublas; }
    MemorySegment cusolver() { return cusolver; }
    long errorWord() { return errorWord; }
    long reductionScratch() { return reductionScratch; }

    /** A cuSOLVER workspace of at least {@code bytes}, grown (and re-measured) when a larger SVD needs it. */
    long solverWorkspace(long bytes) {
        if (bytes > solverWorkspaceBytes) {
            long before = free();
            if (solverWorkspace != 0) {
                synchronize();
                Cuda.check(cuda_runtime_api_h.cudaFree(MemorySegment.ofAddress(solverWorkspace)), "cudaFree(cusolver workspace)");
                solverWorkspace = 0;
            }
            long size = Math.max(bytes, 1L << 20);
            solverWorkspace = malloc(size, "cusolver workspace");
            solverWorkspaceBytes = size;
            runtime.merge(label("cusolver workspace"), before - free(), Long::sum);
        }
        return solverWorkspace;
    }

    /** Waits for the stream; an asynchronous failure becomes a CudaException naming the kernels launched since the last sync. */
    void synchronize() {
        enter();
        synchronizations++;
        int rc = cuda_runtime_api_h.cudaStreamSynchronize(stream);
        List<String> recent = kernels.drainRecent();
        if (rc != cuda_runtime_api_h.cudaSuccess) {
            throw new CudaException("cudaStreamSynchronize on " + device + " (after " + (recent.isEmpty() ? "no kernel"
                    : String.join(", ", recent)) + ")", Cuda.errorName(rc), Cuda.errorString(rc));
        }
    }

    /** How many times the host has waited for this device's stream (every synchronisation of CudaOps is one). */
    long synchronizations() { return synchronizations; }

    @Override public Region reserve(long bytes, String arenaName) {
        enter();
        if (bytes == 0) return new CudaRegion(this, 0, 0, 0, arenaName);
        long before = free();
        long address;
        try {
            address = malloc(bytes, "arena '" + arenaName + "'");
        } catch (CudaException e) {
            long[] info = Cuda.memInfo();
            throw new IllegalStateException("cannot reserve " + MemoryLedger.human(bytes) + " on " + device + " for arena '"
                    + arenaName + "': " + e.errorName() + " (" + MemoryLedger.human(info[0]) + " free of "
                    + MemoryLedger.human(info[1]) + ")", e);
        }
        long measured = before - free();
        arenaMallocMeasured += measured;
        arenaBytes += bytes;
        return new CudaRegion(this, address, bytes, measured, arenaName);
    }

    void release(CudaRegion r) {
        if (r.address() == 0) return;
        enter();
        long before = free();
        // cudaFree waits for the device, so no queued kernel still uses the memory
        Cuda.check(cuda_runtime_api_h.cudaFree(MemorySegment.ofAddress(r.address())), "cudaFree(arena '" + r.arenaName() + "')");
        arenaMallocMeasured -= free() - before;
        arenaBytes -= r.byteSize();
    }

    /** Runtime memory by label (context, handles, workspaces, cudaMalloc granularity, anything loaded lazily since). */
    public synchronized Map<String, Long> runtimeMemory() {
        enter();
        Map<String, Long> out = new LinkedHashMap<>(runtime);
        out.put(label("cudaMalloc granularity"), arenaMallocMeasured - arenaBytes);
        long[] info = Cuda.memInfo();
        long explained = arenaBytes;
        for (long v : out.values()) explained += v;
        // memory no call of ours caused directly: modules CUDA libraries load lazily (cuBLAS kernels on first GEMM of a kind)
        out.put(label("lazily loaded by CUDA libraries"), (info[1] - info[0]) - explained);
        return out;
    }

    @Override public void reportRuntimeMemory(MemoryLedger ledger) {
        runtimeMemory().forEach((label, bytes) -> ledger.reportExternal(device, MemoryCategory.RUNTIME, label, bytes));
    }

    /** Device memory free right now (cudaMemGetInfo), what a new plan may still take. */
    public long freeBytes() {
        enter();
        return free();
    }

    /** Device memory in use right now (total − free), what the ledger's total should equal. */
    public long deviceUsedBytes() {
        enter();
        long[] info = Cuda.memInfo();
        return info[1] - info[0];
    }

    @Override public String toString() { return "CudaBackend[" + device + ", " + describe() + "]"; }

    /** One cudaMalloc backing one arena. */
    record CudaRegion(CudaBackend backend, long address, long byteSize, long measured, String arenaName) implements Region {
        @Override public MemorySegment segment() {
            throw new UnsupportedOperationException("arena '" + arenaName + "' lives in GPU memory on " + backend.device
                    + ": copy to the host with Ops.copyToHost");
        }

        @Override public void close() { backend.release(this); }
    }
}
