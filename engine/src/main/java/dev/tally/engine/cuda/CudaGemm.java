package dev.tally.engine.cuda;

import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.cuda.KernelArg.Desc;
import dev.tally.engine.cuda.KernelArg.F32;
import dev.tally.jextract.cublas_api_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Ops.matmul on CUDA. Row-major out = a @ b is column-major outᵀ = bᵀ aᵀ, so cuBLAS gets (b, a) swapped; a transposed
 * view (unit stride along its rows) is passed with CUBLAS_OP_T instead of being copied. bf16/f16 operands run on tensor
 * cores with fp32 compute; fp32 uses TF32 only when the backend allows it. Batch dims that collapse to one stride go to
 * cublasGemmStridedBatchedEx (broadcast operands get stride 0); other layouts — no unit stride, mixed dtypes, a
 * transposed output — go to the strided fallback kernel, which accumulates in fp32 as well.
 */
final class CudaGemm {
    private final CudaBackend backend;

    CudaGemm(CudaBackend backend) { this.backend = backend; }

    /** How one matrix [rows, cols] with strides (sr, sc) is seen by column-major cuBLAS. */
    record Layout(boolean transposed, long ld) {
        /** Row-major (sc = 1) is the column-major cols×rows matrix (op N); sr = 1 is the rows×cols one (op T). */
        static Layout of(int rows, int cols, long sr, long sc) {
            if ((sc == 1 || cols == 1) && (rows == 1 || sr >= Math.max(1, cols))) {
                return new Layout(false, rows == 1 ? Math.max(1, cols) : sr);
            }
            if ((sr == 1 || rows == 1) && (cols == 1 || sc >= Math.max(1, rows))) {
                return new Layout(true, cols == 1 ? Math.max(1, rows) : sc);
            }
            return null;
        }

        boolean fitsInt() { return ld <= Integer.MAX_VALUE; }
    }

    /** The single stride that walks a view's batch dims in flat order, or null when they do not collapse. */
    static Long batchStride(int[] dims, long[] strides, int batchRank) {
        Long stride = null;
        long expect = -1;
        for (int i = batchRank - 1; i >= 0; i--) {
            if (dims[i] == 1) continue;
            if (stride == null) {
                stride = strides[i];
                expect = strides[i] * dims[i];
            } else {
                if (strides[i] != expect) return null;
                expect = strides[i] * dims[i];
            }
        }
        return stride == null ? 0L : stride;
    }

    static int cudaType(DType t) {
        return switch (t) {
            case F32 -> cublas_api_h.CUDA_R_32F;
            case BF16 -> cublas_api_h.CUDA_R_16BF;
            case F16 -> cublas_api_h.CUDA_R_16F;
            default -> -1;
        };
    }

    void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        if (out.numel() == 0) return;
        int m = out.dim(-2), n = out.dim(-1), k = a.dim(-1);
        if (k == 0) { // empty inner dimension: out = beta·out (or 0)
            backend.ops().axpby(0, out, beta, out, out);
            if (beta == 0) backend.ops().fill(out, 0);
            return;
        }
        Shape outShape = out.shape();
        int batchRank = out.rank() - 2;
        Tensor ae = expandBatch(a, outShape, m, k), be = expandBatch(b, outShape, k, n);
        if (!cublas(ae, be, out, m, n, k, batchRank, alpha, beta)) fallback(ae, be, out, alpha, beta);
    }

    private static Tensor expandBatch(Tensor t, Shape outShape, int rows, int cols) {
        int[] dims = outShape.toArray();
        dims[dims.length - 2] = rows;
        dims[dims.length - 1] = cols;
        Shape target = Shape.of(dims);
        return t.shape().equals(target) ? t : t.expand(target);
    }

    private boolean cublas(Tensor a, Tensor b, Tensor out, int m, int n, int k, int batchRank, double alpha, double beta) {
        DType in = a.dtype();
        if (b.dtype() != in || cudaType(in) < 0) return false;
        if (in == DType.F32 && out.dtype() != DType.F32) return false;
        if (in != DType.F32 && out.dtype() != in && out.dtype() != DType.F32) return false;
        Layout la = Layout.of(m, k, a.stride(-2), a.stride(-1));
        Layout lb = Layout.of(k, n, b.stride(-2), b.stride(-1));
        Layout lc = Layout.of(m, n, out.stride(-2), out.stride(-1));
        if (la == null || lb == null || lc == null || lc.transposed() || !la.fitsInt() || !lb.fitsInt() || !lc.fitsInt()) return false;
        long batch = out.numel() / ((long) m * n);
        Long sa = batchStride(a.dims(), a.strides(), batchRank), sb = batchStride(b.dims(), b.strides(), batchRank);
        Long sc = batchStride(out.dims(), out.strides(), batchRank);
        if (batch > 1 && (sa == null || sb == null || sc == null || batch > Integer.MAX_VALUE)) return false;
        // 16-byte alignment keeps cuBLAS on its fast paths; any element-aligned pointer is legal, so just require that
        int compute = in == DType.F32 && !backend.allowTf32() ? cublas_api_h.CUBLAS_COMPUTE_32F
                : in == DType.F32 ? cublas_api_h.CUBLAS_COMPUTE_32F_FAST_TF32 : cublas_api_h.CUBLAS_COMPUTE_32F;
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment al = ar.allocate(ValueLayout.JAVA_FLOAT), be = ar.allocate(ValueLayout.JAVA_FLOAT);
            al.set(ValueLayout.JAVA_FLOAT, 0, (float) alpha);
            be.set(ValueLayout.JAVA_FLOAT, 0, (float) beta);
            // column-major: C(n×m) = op(B)(n×k) · op(A)(k×m)
            int opB = lb.transposed() ? cublas_api_h.CUBLAS_OP_T : cublas_api_h.CUBLAS_OP_N;
            int opA = la.transposed() ? cublas_api_h.CUBLAS_OP_T : cublas_api_h.CUBLAS_OP_N;
            MemorySegment pa = MemorySegment.ofAddress(a.address()), pb = MemorySegment.ofAddress(b.address());
            MemorySegment pc = MemorySegment.ofAddress(out.address());
            int status;
            if (batch == 1) {
                status = cublas_api_h.cublasGemmEx(backend.cublas(), opB, opA, n, m, k, al, pb, cudaType(in), (int) lb.ld(),
                        pa, cudaType(in), (int) la.ld(), be, pc, cudaType(out.dtype()), (int) lc.ld(), compute,
                        cublas_api_h.CUBLAS_GEMM_DEFAULT);
                Cuda.checkBlas(status, "cublasGemmEx(" + shapes(a, b, out) + ")");
            } else {
                status = cublas_api_h.cublasGemmStridedBatchedEx(backend.cublas(), opB, opA, n, m, k, al, pb, cudaType(in),
                        (int) lb.ld(), sb, pa, cudaType(in), (int) la.ld(), sa, be, pc, cudaType(out.dtype()), (int) lc.ld(), sc,
                        (int) batch, compute, cublas_api_h.CUBLAS_GEMM_DEFAULT);
                Cuda.checkBlas(status, "cublasGemmStridedBatchedEx(" + shapes(a, b, out) + ")");
            }
        }
        return true;
    }

    private static String shapes(Tensor a, Tensor b, Tensor out) {
        return a.dtype() + Arrays.toString(a.dims()) + " @ " + b.dtype() + Arrays.toString(b.dims()) + " -> " + out.dtype()
                + Arrays.toString(out.dims());
    }

    /** CUDA's limit on gridDim.y and gridDim.z; the kernel steps over row tiles and batches beyond it. */
    static final int MAX_GRID_YZ = 65_535;

    /** (x, y, z) blocks of 16×16 for an m×n output in {@code batch} batches: y and z capped at {@link #MAX_GRID_YZ}. */
    static int[] fallbackGrid(int m, int n, long batch) {
        long rowTiles = ((long) m + 15) / 16;
        return new int[]{Math.max(1, (n + 15) / 16), (int) Math.max(1, Math.min(rowTiles, MAX_GRID_YZ)),
                (int) Math.max(1, Math.min(batch, MAX_GRID_YZ))};
    }

    private void fallback(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        int m = out.dim(-2), n = out.dim(-1);
        long batch = out.numel() / ((long) m * n);
        int[] grid = fallbackGrid(m, n, batch);
        backend.kernels().launch("tally_gemm_strided", grid[0], grid[1], grid[2], 16, 16,
                Desc.of(a), Desc.of(b), Desc.of(out), new F32((float) alpha), new F32((float) beta));
    }
}
