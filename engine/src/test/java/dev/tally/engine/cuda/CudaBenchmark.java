package dev.tally.engine.cuda;

import java.lang.foreign.Arena;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.Tensor;
import dev.tally.jextract.cuda_runtime_api_h;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * GPU benchmarks of the CUDA backend, timed with CUDA events on its stream (run by scripts/gpu-round.sh; not a unit
 * test). Writes one JSON object per line: GEMM TFLOP/s (bf16 and fp32) at 4096³ and the LLaMA-130M shapes, and GB/s of
 * an elementwise add and a softmax next to a device-to-device copy. scripts/gpu_bench_torch.py measures the same with
 * PyTorch under the same names.
 *
 * <p>Usage: CudaBenchmark OUTPUT.jsonl
 */
public final class CudaBenchmark {
    private final CudaBackend backend;
    private final Ops ops;
    private final List<String> lines = new ArrayList<>();

    private CudaBenchmark(CudaBackend backend) {
        this.backend = backend;
        this.ops = backend.ops();
    }

    /** Milliseconds per call of {@code body}, averaged over {@code iters} after {@code warm} warm-up calls. */
    private double time(int warm, int iters, Runnable body) {
        for (int i = 0; i < warm; i++) body.run();
        MemorySegment start = event(), end = event();
        try {
            Cuda.check(cuda_runtime_api_h.cudaEventRecord(start, backend.stream()), "cudaEventRecord");
            for (int i = 0; i < iters; i++) body.run();
            Cuda.check(cuda_runtime_api_h.cudaEventRecord(end, backend.stream()), "cudaEventRecord");
            ops.synchronize();
            try (var a = Arena.ofConfined()) {
                MemorySegment ms = a.allocate(ValueLayout.JAVA_FLOAT);
                Cuda.check(cuda_runtime_api_h.cudaEventElapsedTime(ms, start, end), "cudaEventElapsedTime");
                return ms.get(ValueLayout.JAVA_FLOAT, 0) / iters;
            }
        } finally {
            cuda_runtime_api_h.cudaEventDestroy(start);
            cuda_runtime_api_h.cudaEventDestroy(end);
        }
    }

    private static MemorySegment event() {
        return Cuda.outPointer("cudaEventCreateWithFlags", p -> cuda_runtime_api_h.cudaEventCreateWithFlags(p, cuda_runtime_api_h.cudaEventDefault));
    }

    private void record(String kind, String name, String dtype, String shape, double ms, String unit, double value) {
        String line = String.format(Locale.ROOT,
                "{\"impl\":\"tally\",\"kind\":\"%s\",\"name\":\"%s\",\"dtype\":\"%s\",\"shape\":\"%s\",\"ms\":%.5f,\"unit\":\"%s\",\"value\":%.3f}",
                kind, name, dtype, shape, ms, unit, value);
        lines.add(line);
        System.out.println(line);
    }

    private void gemm(MemoryLedger ledger, String name, int m, int k, int n, DType dt) {
        long bytes = MemoryArena.bookedBytes(dt, dev.tally.engine.Shape.of(m, k)) + MemoryArena.bookedBytes(dt, dev.tally.engine.Shape.of(k, n))
                + MemoryArena.bookedBytes(dt, dev.tally.engine.Shape.of(m, n));
        try (MemoryArena arena = new MemoryArena(ledger, "bench-gemm", MemoryCategory.WORKSPACE, backend.device(), bytes)) {
            Tensor a = arena.allocate("a", dt, m, k), b = arena.allocate("b", dt, k, n), c = arena.allocate("c", dt, m, n);
            ops.random(a, Distribution.NORMAL, 1, 0, 0, 1);
            ops.random(b, Distribution.NORMAL, 2, 0, 0, 1);
            int iters = (long) m * n * k > 1L << 33 ? 20 : 50;
            double ms = time(5, iters, () -> ops.matmul(a, b, c, 1, 0));
            record("gemm", name, dt.name().toLowerCase(Locale.ROOT), m + "x" + k + "x" + n, ms, "TFLOP/s", 2.0 * m * n * k / (ms * 1e-3) / 1e12);
        }
    }

    private void bandwidth(MemoryLedger ledger, int rows, int cols) {
        DType dt = DType.BF16;
        long n = (long) rows * cols;
        try (MemoryArena arena = new MemoryArena(ledger, "bench-bw", MemoryCategory.WORKSPACE, backend.device(), 3 * MemoryArena.bookedBytes(dt, dev.tally.engine.Shape.of(rows, cols)))) {
            Tensor x = arena.allocate("x", dt, rows, cols), y = arena.allocate("y", dt, rows, cols), z = arena.allocate("z", dt, rows, cols);
            ops.random(x, Distribution.NORMAL, 3, 0, 0, 1);
            ops.random(y, Distribution.NORMAL, 4, 0, 0, 1);
            String shape = rows + "x" + cols;
            long bytes = n * dt.byteSize();
            double copy = time(3, 20, () -> Cuda.check(cuda_runtime_api_h.cudaMemcpyAsync(MemorySegment.ofAddress(z.address()),
                    MemorySegment.ofAddress(x.address()), bytes, cuda_runtime_api_h.cudaMemcpyDeviceToDevice, backend.stream()), "cudaMemcpyAsync"));
            record("bandwidth", "copy_d2d", "bf16", shape, copy, "GB/s", 2.0 * bytes / (copy * 1e-3) / 1e9);
            double add = time(3, 20, () -> ops.binary(BinaryOp.ADD, x, y, z));
            record("bandwidth", "add", "bf16", shape, add, "GB/s", 3.0 * bytes / (add * 1e-3) / 1e9);
            double sm = time(3, 20, () -> ops.softmax(x, z, false));
            record("bandwidth", "softmax", "bf16", shape, sm, "GB/s", 2.0 * bytes / (sm * 1e-3) / 1e9);
        }
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "bench-tally.jsonl");
        CudaBackend backend = (CudaBackend) Backends.of(Device.cuda(0));
        System.out.println("# " + backend.describe());
        CudaBenchmark b = new CudaBenchmark(backend);
        MemoryLedger ledger = new MemoryLedger();
        for (DType dt : new DType[]{DType.BF16, DType.F32}) {
            b.gemm(ledger, "square_4096", 4096, 4096, 4096, dt);
            // LLaMA-130M (hidden 768, MLP 2048, vocab 32000), batch 8 × 256 tokens = 2048 rows
            b.gemm(ledger, "llama130m_qkvo", 2048, 768, 768, dt);
            b.gemm(ledger, "llama130m_mlp_up", 2048, 768, 2048, dt);
            b.gemm(ledger, "llama130m_mlp_down", 2048, 2048, 768, dt);
            b.gemm(ledger, "llama130m_lm_head", 2048, 768, 32000, dt);
        }
        b.bandwidth(ledger, 8192, 8192);
        b.bandwidth(ledger, 2048, 32000);
        Files.write(out, b.lines);
    }
}
