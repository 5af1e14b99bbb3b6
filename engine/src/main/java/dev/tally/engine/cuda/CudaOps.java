package dev.tally.engine.cuda;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.internal.Checks;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.Ops;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.cuda.KernelArg.Desc;
import dev.tally.engine.cuda.KernelArg.F32;
import dev.tally.engine.cuda.KernelArg.F64;
import dev.tally.engine.cuda.KernelArg.I32;
import dev.tally.engine.cuda.KernelArg.I64;
import dev.tally.engine.cuda.KernelArg.Ptr;
import dev.tally.jextract.cuda_runtime_api_h;
import dev.tally.jextract.cusolverDn_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * {@link Ops} on a CUDA device, with the CPU backend's semantics: {@link Checks} first, then one kernel launch on the
 * device's stream (GEMMs through cuBLAS, SVD through cuSOLVER). Launches are asynchronous; failures surface at the
 * next {@link #synchronize()} (host copies synchronize), and so do out-of-range ids of embedding and scatterAddRows,
 * which their kernels record in the backend's error word (see {@link PendingIdChecks}): no op but a host copy or an
 * SVD (its info word) waits for the device.
 */
final class CudaOps implements Ops {
    private static final int THREADS = 256;
    private static final long MAX_BLOCKS = 65_535L * 16;

    private final CudaBackend backend;
    private final Device device;
    private final CudaGemm gemm;
    /** The id-checked launches since the last synchronisation, to name the one that set the error word. */
    private final PendingIdChecks pendingIds = new PendingIdChecks();

    CudaOps(CudaBackend backend) {
        this.backend = backend;
        this.device = backend.device();
        this.gemm = new CudaGemm(backend);
    }

    @Override public Device device() { return device; }

    private CudaKernels k() {
        backend.enter();
        return backend.kernels();
    }

    private static long blocksFor(long work) {
        return Math.max(1, Math.min(MAX_BLOCKS, (work + THREADS - 1) / THREADS));
    }

    private static long rowBlocks(long rows) { return Math.max(1, Math.min(MAX_BLOCKS, rows)); }

    private static Desc d(Tensor t) { return Desc.of(t); }

    /** A descriptor for kernels that walk a tensor in flat order only: contiguous views become rank 1. */
    private static Desc flat(Tensor t) { return Desc.coalesce(Desc.of(t))[0]; }

    /** {@code t} broadcast to {@code shape} (stride 0 along broadcast dims). */
    private static Desc expanded(Tensor t, Shape shape) {
        return Desc.of(t.shape().equals(shape) ? t : t.expand(shape));
    }

    // ---------------- data movement ----------------

    @Override public void fill(Tensor out, double value) {
        Checks.sameDevice("fill", device, out);
        if (out.numel() == 0) return;
        if (value == 0 && Double.doubleToRawLongBits(value) == 0 && out.isContiguous()) { // +0.0 is all-zero bytes in every dtype
            backend.enter();
            Cuda.check(cuda_runtime_api_h.cudaMemsetAsync(MemorySegment.ofAddress(out.address()), 0, out.byteSize(), backend.stream()),
                    "cudaMemsetAsync (fill " + out + ")");
            return;
        }
        Desc[] c = Desc.coalesce(d(out));
        k().launch("tally_fill", blocksFor(out.numel()), THREADS, c[0], new F64(value));
    }

    @Override public void copy(Tensor src, Tensor dst) {
        Checks.copy(device, src, dst);
        if (dst.numel() == 0) return;
        if (src.dtype() == dst.dtype() && src.shape().equals(dst.shape()) && src.isContiguous() && dst.isContiguous()) {
            backend.enter(); // same bytes: a device-to-device copy on the stream (overlap is the caller's error, as elsewhere)
            Cuda.check(cuda_runtime_api_h.cudaMemcpyAsync(MemorySegment.ofAddress(dst.address()), MemorySegment.ofAddress(src.address()),
                    dst.byteSize(), cuda_runtime_api_h.cudaMemcpyDeviceToDevice, backend.stream()), "cudaMemcpyAsync (copy " + dst + ")");
            return;
        }
        Desc[] c = Desc.coalesce(expanded(src, dst.shape()), d(dst));
        k().launch("tally_copy", blocksFor(dst.numel()), THREADS, c[0], c[1]);
    }

    @Override public void copyFromHost(MemorySegment src, Tensor dst) {
        Checks.sameDevice("copyFromHost", device, dst);
        long bytes = dst.byteSize();
        if (src.byteSize() < bytes) {
            throw new IllegalArgumentException("copyFromHost: host buffer of " + src.byteSize() + " B is smaller than " + dst
                    + " (" + bytes + " B)");
        }
        if (bytes == 0) return;
        backend.enter();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = src.isNative() ? src : a.allocate(bytes, 16).copyFrom(src.asSlice(0, bytes));
            if (dst.isContiguous()) {
                memcpy(dst.address(), host.address(), bytes, cuda_runtime_api_h.cudaMemcpyHostToDevice, "copyFromHost");
                return;
            }
            // strided destination: read the span it covers, scatter the packed values into it, write the span back
            HostSpan span = HostSpan.of(dst);
            MemorySegment staging = a.allocate(span.bytes(), 16);
            memcpy(staging.address(), span.deviceStart(), span.bytes(), cuda_runtime_api_h.cudaMemcpyDeviceToHost, "copyFromHost");
            span.scatter(host, staging);
            memcpy(span.deviceStart(), staging.address(), span.bytes(), cuda_runtime_api_h.cudaMemcpyHostToDevice, "copyFromHost");
        }
    }

    @Override public void copyToHost(Tensor src, MemorySegment dst) {
        Checks.sameDevice("copyToHost", device, src);
        long bytes = src.byteSize();
        if (dst.byteSize() < bytes) {
            throw new IllegalArgumentException("copyToHost: host buffer of " + dst.byteSize() + " B is smaller than " + src
                    + " (" + bytes + " B)");
        }
        if (bytes == 0) {
            synchronize("copyToHost");
            return;
        }
        backend.enter();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = dst.isNative() ? dst : a.allocate(bytes, 16);
            if (src.isContiguous()) {
                memcpy(host.address(), src.address(), bytes, cuda_runtime_api_h.cudaMemcpyDeviceToHost, "copyToHost");
            } else {
                HostSpan span = HostSpan.of(src);
                MemorySegment staging = a.allocate(span.bytes(), 16);
                memcpy(staging.address(), span.deviceStart(), span.bytes(), cuda_runtime_api_h.cudaMemcpyDeviceToHost, "copyToHost");
                span.gather(staging, host);
            }
            if (host != dst) dst.asSlice(0, bytes).copyFrom(host.asSlice(0, bytes));
        }
    }

    /** Stream-ordered copy, then synchronize (host memory may be pageable and is reused by the caller right away). */
    private void memcpy(long dst, long src, long bytes, int kind, String op) {
        Cuda.check(cuda_runtime_api_h.cudaMemcpyAsync(MemorySegment.ofAddress(dst), MemorySegment.ofAddress(src), bytes, kind,
                backend.stream()), "cudaMemcpyAsync (" + op + ", " + bytes + " B)");
        synchronize(op);
    }

    // ---------------- elementwise ----------------

    @Override public void unary(UnaryOp op, Tensor x, Tensor out) {
        Checks.unary(device, op, x, out);
        if (out.numel() == 0) return;
        Desc[] c = Desc.coalesce(d(x), d(out));
        k().launch("tally_unary", blocksFor(out.numel()), THREADS, new I32(op.ordinal()), c[0], c[1]);
    }

    @Override public void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        Checks.unaryBackward(device, op, x, dy, dx);
        if (dx.numel() == 0) return;
        Desc[] c = Desc.coalesce(d(x), d(dy), d(dx));
        k().launch("tally_unary_backward", blocksFor(dx.numel()), THREADS, new I32(op.ordinal()), c[0], c[1], c[2]);
    }

    @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        Checks.binary(device, op, a, b, out);
        if (out.numel() == 0) return;
        Desc[] c = Desc.coalesce(expanded(a, out.shape()), expanded(b, out.shape()), d(out));
        k().launch("tally_binary", blocksFor(out.numel()), THREADS, new I32(op.ordinal()), c[0], c[1], c[2]);
    }

    @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        Checks.binaryScalar(device, op, a, out);
        if (out.numel() == 0) return;
        Desc[] c = Desc.coalesce(d(a), d(out));
        k().launch("tally_binary_scalar", blocksFor(out.numel()), THREADS, new I32(op.ordinal()), c[0], new F64(s), c[1]);
    }

    @Override public void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) {
        Checks.axpby(device, x, y, out);
        if (out.numel() == 0) return;
        Desc[] c = Desc.coalesce(expanded(x, out.shape()), expanded(y, out.shape()), d(out));
        k().launch("tally_axpby", blocksFor(out.numel()), THREADS, new F64(alpha), c[0], new F64(beta), c[1], c[2]);
    }

    @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
        Checks.where(device, cond, a, b, out);
        if (out.numel() == 0) return;
        Desc[] c = Desc.coalesce(expanded(cond, out.shape()), expanded(a, out.shape()), expanded(b, out.shape()), d(out));
        k().launch("tally_where", blocksFor(out.numel()), THREADS, c[0], c[1], c[2], c[3]);
    }

    // ---------------- reductions ----------------

    @Override public void reduce(ReduceOp op, Tensor x, int dim, Tensor out) {
        Checks.reduce(device, op, x, dim, out);
        if (out.numel() == 0) return;
        int di = x.shape().normalize(dim);
        int[] order = new int[x.rank()];
        for (int i = 0, j = 0; i < x.rank(); i++) if (i != di) order[j++] = i;
        order[x.rank() - 1] = di;
        Tensor xr = x.permute(order), outr = out.permute(order); // reduced dim last: a row reduction
        k().launch("tally_reduce_rows", rowBlocks(out.numel()), THREADS, new I32(op.ordinal()), d(xr), d(outr),
                new I64(out.numel()));
    }

    /** Stage 1 of reduceAll: blocks of {@link #THREADS}, each thread at least 4 elements, at most 1,024 blocks. */
    static int reduceAllBlocks(long numel) {
        return (int) Math.max(1, Math.min(1024, (numel + 4L * THREADS - 1) / (4L * THREADS)));
    }

    /** Two stages: each block reduces a fixed share into a partial in the backend's scratch, one block combines them. */
    @Override public void reduceAll(ReduceOp op, Tensor x, Tensor out) {
        Checks.reduceAll(device, op, x, out);
        int blocks = reduceAllBlocks(x.numel());
        Ptr partials = new Ptr(backend.reductionScratch()); // 2 floats per block: 8 KiB at most
        k().launch("tally_reduce_all_partial", blocks, THREADS, new I32(op.ordinal()), flat(x), partials);
        k().launch("tally_reduce_all_finish", 1, THREADS, new I32(op.ordinal()), partials, new I32(blocks), new I64(x.numel()), d(out));
    }

    // ---------------- neural-network primitives ----------------

    private static long rows(Tensor x) {
        int last = x.rank() == 0 ? 1 : x.dim(-1);
        return last == 0 ? 0 : x.numel() / last;
    }

    @Override public void softmax(Tensor x, Tensor out, boolean causal) {
        Checks.softmax(device, "softmax", x, out, causal);
        long rows = rows(x);
        if (rows == 0 || out.numel() == 0) return;
        k().launch("tally_softmax", rowBlocks(rows), THREADS, d(x), d(out), new I32(causal ? 1 : 0), new I64(rows));
    }

    @Override public void logSoftmax(Tensor x, Tensor out) {
        Checks.softmax(device, "logSoftmax", x, out, false);
        long rows = rows(x);
        if (rows == 0 || out.numel() == 0) return;
        k().launch("tally_log_softmax", rowBlocks(rows), THREADS, d(x), d(out), new I64(rows));
    }

    /**
     * No fused kernel on CUDA yet: autograd keeps the materialized path there (cuBLAS products and the softmax kernel),
     * so these are never called by training; they fail clearly rather than fall back silently.
     */
    @Override public void causalAttention(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        Checks.causalAttention(device, q, k, v, out, lse);
        throw new UnsupportedOperationException("causalAttention: no fused attention kernel on " + device
                + " (the materialized attention path is used there)");
    }

    @Override public void causalAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                                                  Tensor dq, Tensor dk, Tensor dv) {
        Checks.causalAttentionBackward(device, q, k, v, out, lse, dout, dq, dk, dv);
        throw new UnsupportedOperationException("causalAttentionBackward: no fused attention kernel on " + device
                + " (the materialized attention path is used there)");
    }

    @Override public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        Checks.softmaxBackward(device, y, dy, dx);
        long rows = rows(y);
        if (rows == 0 || dx.numel() == 0) return;
        k().launch("tally_softmax_backward", rowBlocks(rows), THREADS, d(y), d(dy), d(dx), new I64(rows));
    }

    /**
     * Composed from the existing kernels, as the losses did before the op existed: out = logits − lse, exp, −1 at each
     * row's target column (the targets shifted by the tile's offset into the reduction scratch, beside a −1 read with
     * stride 0), then × rowScale. Four passes where the CPU makes one; a fused kernel would save three.
     */
    @Override public void softmaxCrossEntropyGrad(Tensor logits, Tensor lse, Tensor targets, long targetOffset, Tensor rowScale, Tensor out) {
        Checks.softmaxCrossEntropyGrad(device, logits, lse, targets, rowScale, out);
        if (out.numel() == 0) return;
        int n = logits.dim(0);
        Desc[] c = Desc.coalesce(d(logits), perRow(lse, out), d(out));
        k().launch("tally_binary", blocksFor(out.numel()), THREADS, new I32(BinaryOp.SUB.ordinal()), c[0], c[1], c[2]);
        c = Desc.coalesce(d(out), d(out));
        k().launch("tally_unary", blocksFor(out.numel()), THREADS, new I32(UnaryOp.EXP.ordinal()), c[0], c[1]);
        long scratch = backend.reductionScratch(), idsAt = scratch + 16;
        k().launch("tally_fill", 1, THREADS, Desc.contiguous(scratch, DType.F32, 1), new F64(-1));
        int chunk = (int) Math.min(Integer.MAX_VALUE, (CudaBackend.REDUCTION_SCRATCH - 16) / 8);
        for (int r0 = 0; r0 < n; r0 += chunk) {
            int rows = Math.min(chunk, n - r0);
            Desc ids = Desc.contiguous(idsAt, DType.I64, rows);
            k().launch("tally_binary_scalar", blocksFor(rows), THREADS, new I32(BinaryOp.SUB.ordinal()), d(targets.slice(0, r0, r0 + rows)),
                    new F64(targetOffset), ids);
            Desc minusOne = new Desc(scratch, DType.F32, new int[] {rows}, new long[] {0});
            k().launch("tally_scatter_add_columns", blocksFor(rows), THREADS, ids, minusOne, d(out.slice(0, r0, r0 + rows)));
        }
        c = Desc.coalesce(d(out), perRow(rowScale, out), d(out));
        k().launch("tally_binary", blocksFor(out.numel()), THREADS, new I32(BinaryOp.MUL.ordinal()), c[0], c[1], c[2]);
    }

    /** A per-row value ([N] or [N, 1]) read across out's [N, C] with column stride 0. */
    private static Desc perRow(Tensor v, Tensor out) {
        return new Desc(v.address(), v.dtype(), out.dims(), new long[] {v.stride(0), 0});
    }

    @Override public void rmsNorm(Tensor x, Tensor weight, double eps, Tensor out, Tensor rstd) {
        Checks.rmsNorm(device, x, weight, out, rstd);
        long rows = rows(x);
        if (rows == 0 || out.numel() == 0) return;
        Desc r = rstd == null ? Desc.contiguous(0, DType.F32, 0) : d(rstd);
        k().launch("tally_rms_norm", rowBlocks(rows), THREADS, d(x), d(weight), new F64(eps), d(out), r,
                new I32(rstd == null ? 0 : 1), new I64(rows));
    }

    @Override public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        Checks.rmsNormBackward(device, x, weight, rstd, dy, dx, dweight);
        long rows = rows(x);
        if (x.numel() == 0) {
            if (dweight != null) fill(dweight, 0);
            return;
        }
        k().launch("tally_rms_norm_backward", rowBlocks(rows), THREADS, d(x), d(weight), d(rstd), d(dy), d(dx), new I64(rows));
        if (dweight != null) {
            int n = x.dim(-1), chunks = dweightChunks(rows, n);
            Ptr partials = new Ptr(backend.reductionScratch());
            k().launch("tally_rms_norm_dweight_partial", (int) blocksFor(n), chunks, 1, THREADS, 1, d(x), d(rstd), d(dy), d(dweight),
                    partials, new I64(rows), new I32(chunks));
            if (chunks > 1) k().launch("tally_rms_norm_dweight_finish", blocksFor(n), THREADS, partials, new I32(chunks), d(dweight));
        }
    }

    /** Rows summed by one thread in stage 1 of RMSNorm's weight gradient, at least (fewer when scratch runs short). */
    static final int DWEIGHT_ROWS_PER_CHUNK = 32;

    /**
     * How many row chunks stage 1 of RMSNorm's weight gradient uses: one per {@link #DWEIGHT_ROWS_PER_CHUNK} rows, as
     * many as the scratch holds partials for (chunks × n fp32), at most 65,535 (gridDim.y); 1 means no stage 2.
     */
    static int dweightChunks(long rows, int n) {
        long byRows = (rows + DWEIGHT_ROWS_PER_CHUNK - 1) / DWEIGHT_ROWS_PER_CHUNK;
        long byScratch = CudaBackend.REDUCTION_SCRATCH / 4 / Math.max(1, n);
        return (int) Math.max(1, Math.min(Math.min(byRows, byScratch), 65_535));
    }

    @Override public void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse) {
        Checks.rope(device, x, out);
        long rows = rows(x);
        if (out.numel() == 0) return;
        k().launch("tally_rope", blocksFor(rows * (x.dim(-1) / 2)), THREADS, d(x), d(out), new I32(positionOffset),
                new F64(base), new I32(inverse ? 1 : 0), new I64(rows));
    }

    /** A bitonic network on the device (sort.cu): one launch per stage, log2(P)·(log2(P)+1)/2 for P the power of two ≥ n. */
    @Override public void argsort(Tensor keys, Tensor order, Tensor rank) {
        Checks.argsort(device, keys, order, rank);
        long n = keys.numel();
        if (n == 0) return;
        long p2 = n <= 1 ? 1 : Long.highestOneBit(n - 1) << 1;
        k().launch("tally_argsort_init", blocksFor(n), THREADS, new Ptr(order.address()), new I64(n));
        for (long merged = 2; merged <= p2; merged <<= 1) {
            for (long span = merged / 2; span >= 1; span >>= 1) {
                k().launch("tally_argsort_stage", blocksFor(p2 / 2), THREADS, d(keys), new Ptr(order.address()), new I64(n),
                        new I64(merged), new I64(span), new I64(p2 / 2));
            }
        }
        if (rank != null) k().launch("tally_argsort_rank", blocksFor(n), THREADS, new Ptr(order.address()), new Ptr(rank.address()), new I64(n));
    }

    /** No synchronisation: a bad id is reported at the next one, naming this call (see {@link PendingIdChecks}). */
    @Override public void embedding(Tensor table, Tensor ids, Tensor out) {
        Checks.embedding(device, table, ids, out);
        if (out.numel() == 0) return;
        long code = pendingIds.launch(PendingIdChecks.Call.of("embedding", ids, table));
        k().launch("tally_embedding", blocksFor(out.numel()), THREADS, d(table), d(ids), d(out), new Ptr(backend.errorWord()),
                new I64(code));
    }

    /** No synchronisation, as {@link #embedding}. */
    @Override public void scatterAddRows(Tensor ids, Tensor src, Tensor table) {
        Checks.scatterAddRows(device, ids, src, table);
        if (src.numel() == 0) return;
        floatingTarget("scatterAddRows", table);
        long code = pendingIds.launch(PendingIdChecks.Call.of("scatterAddRows", ids, table));
        k().launch("tally_scatter_add_rows", blocksFor(src.numel()), THREADS, d(ids), d(src), d(table), new Ptr(backend.errorWord()),
                new I64(code));
    }

    private static void floatingTarget(String op, Tensor t) {
        if (!t.dtype().isFloating()) {
            throw new IllegalArgumentException(op + " on CUDA accumulates into floating tensors only, got " + t);
        }
    }

    @Override public void gatherColumns(Tensor x, Tensor ids, Tensor out) {
        Checks.columns(device, "gatherColumns", x, ids, out);
        if (out.numel() == 0) return;
        k().launch("tally_gather_columns", blocksFor(x.dim(0)), THREADS, d(x), d(ids), d(out));
    }

    @Override public void scatterAddColumns(Tensor ids, Tensor src, Tensor x) {
        Checks.columns(device, "scatterAddColumns", x, ids, src);
        if (src.numel() == 0) return;
        k().launch("tally_scatter_add_columns", blocksFor(x.dim(0)), THREADS, d(ids), d(src), d(x));
    }

    // ---------------- linear algebra ----------------

    @Override public void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        Checks.matmul(device, a, b, out);
        backend.enter();
        gemm.matmul(a, b, out, alpha, beta);
    }

    /**
     * gesvd needs rows ≥ columns in column-major order. A row-major [m, n] buffer is the column-major n×m matrix Aᵀ, so
     * for n ≥ m we factor Aᵀ = V S Uᵀ as it lies; for m > n we first copy A transposed (column-major A) and factor A.
     * Results are copied out through strided views (and converted to the outputs' dtypes).
     */
    @Override public void svd(Tensor a, Tensor u, Tensor s, Tensor vt) {
        Checks.svd(device, a, u, s, vt);
        int m = a.dim(0), n = a.dim(1), k = Math.min(m, n);
        if (k == 0) return;
        backend.enter();
        boolean wide = n >= m;
        int rowsX = wide ? n : m, colsX = k; // the column-major matrix handed to gesvd: rowsX × colsX
        int lwork;
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment lw = ar.allocate(ValueLayout.JAVA_INT);
            Cuda.checkSolver(cusolverDn_h.cusolverDnSgesvd_bufferSize(backend.cusolver(), rowsX, colsX, lw), "cusolverDnSgesvd_bufferSize");
            lwork = lw.get(ValueLayout.JAVA_INT, 0);
        }
        long fx = 4L * rowsX * colsX, fs = 4L * colsX, fu = 4L * rowsX * colsX, fvt = 4L * colsX * colsX, fw = 4L * lwork;
        long oX = 0, oS = align(oX + fx), oU = align(oS + fs), oVT = align(oU + fu), oW = align(oVT + fvt), oInfo = align(oW + fw);
        long ws = backend.solverWorkspace(oInfo + 256);
        // X: row-major A ([m, n], = column-major Aᵀ) when wide, else row-major Aᵀ ([n, m], = column-major A)
        Desc xDesc = wide ? Desc.contiguous(ws + oX, DType.F32, m, n) : Desc.contiguous(ws + oX, DType.F32, n, m);
        Desc aDesc = wide ? d(a) : d(a.t());
        k().launch("tally_copy", blocksFor((long) m * n), THREADS, aDesc, xDesc);
        Cuda.checkSolver(cusolverDn_h.cusolverDnSgesvd(backend.cusolver(), (byte) 'S', (byte) 'S', rowsX, colsX,
                MemorySegment.ofAddress(ws + oX), rowsX, MemorySegment.ofAddress(ws + oS), MemorySegment.ofAddress(ws + oU), rowsX,
                MemorySegment.ofAddress(ws + oVT), colsX, MemorySegment.ofAddress(ws + oW), lwork, MemorySegment.NULL,
                MemorySegment.ofAddress(ws + oInfo)), "cusolverDnSgesvd");
        // column-major P read row-major is Pᵀ
        Desc uBuf = Desc.contiguous(ws + oU, DType.F32, colsX, rowsX);   // = (U_X)ᵀ
        Desc vtBuf = Desc.contiguous(ws + oVT, DType.F32, colsX, colsX); // = (VT_X)ᵀ
        if (wide) { // X = Aᵀ = V S Uᵀ: U_X = V, VT_X = Uᵀ
            k().launch("tally_copy", blocksFor(vt.numel()), THREADS, uBuf, d(vt));
            k().launch("tally_copy", blocksFor(u.numel()), THREADS, vtBuf, d(u));
        } else {    // X = A: U_X = U, VT_X = Vᵀ
            k().launch("tally_copy", blocksFor(u.numel()), THREADS, uBuf.transposed(), d(u));
            k().launch("tally_copy", blocksFor(vt.numel()), THREADS, vtBuf.transposed(), d(vt));
        }
        k().launch("tally_copy", blocksFor(k), THREADS, Desc.contiguous(ws + oS, DType.F32, k), d(s));
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment info = ar.allocate(ValueLayout.JAVA_INT);
            memcpy(info.address(), ws + oInfo, 4, cuda_runtime_api_h.cudaMemcpyDeviceToHost, "svd info");
            int v = info.get(ValueLayout.JAVA_INT, 0);
            if (v != 0) {
                throw new IllegalStateException("svd of " + a.shape() + " (" + a.label() + "): cusolverDnSgesvd "
                        + (v > 0 ? "did not converge (" + v + " superdiagonals)" : "rejected parameter " + (-v)));
            }
        }
    }

    private static long align(long bytes) { return (bytes + 255) & -256L; }

    // ---------------- random ----------------

    @Override public void random(Tensor out, Distribution dist, long seed, long offset, double a, double b) {
        Checks.random(device, out);
        if (out.numel() == 0) return;
        k().launch("tally_random", blocksFor((out.numel() + 3) / 4), THREADS, flat(out), new I32(dist.ordinal()), new I64(seed),
                new I64(offset), new F64(a), new F64(b));
    }

    // ---------------- 8-bit block quantization ----------------

    @Override public void quantizeBlockwise(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        Checks.quantize(device, x, code, absmax, q, blockSize);
        if (x.numel() == 0) return;
        long blocks = (x.numel() + blockSize - 1) / blockSize;
        k().launch("tally_quantize_blockwise", rowBlocks(blocks), THREADS, flat(x), d(code), d(absmax), flat(q), new I32(blockSize),
                new I32(signed ? 1 : 0));
    }

    @Override public void dequantizeBlockwise(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        Checks.dequantize(device, q, code, absmax, out, blockSize);
        if (out.numel() == 0) return;
        k().launch("tally_dequantize_blockwise", blocksFor(out.numel()), THREADS, flat(q), d(code), d(absmax), flat(out), new I32(blockSize));
    }

    // ---------------- asymmetric group quantization ----------------

    @Override public void quantizeGroups(Tensor x, GroupRounding rounding, QuantizedTensor q) {
        Checks.groupQuant(device, "quantizeGroups", x, rounding, q);
        long groups = QuantizedTensor.groups(q.shape(), q.groupSize());
        k().launch("tally_group_scales", rowBlocks(groups), THREADS, flat(x), flat(q.scales()), flat(q.zeros()),
                new I64(q.groupSize()), new I32((1 << q.bits()) - 1));
        int mode = 0;
        long seed = 0, offset = 0;
        Tensor r = x; // unused unless mode 2
        switch (rounding) {
            case GroupRounding.Nearest n -> mode = 0;
            case GroupRounding.Philox(long sd, long off) -> { mode = 1; seed = sd; offset = off; }
            case GroupRounding.Given(Tensor given) -> { mode = 2; r = given; }
        }
        long work = q.bits() == 8 ? x.numel() : (x.numel() + 1) / 2;
        k().launch("tally_group_codes", blocksFor(work), THREADS, flat(x), flat(r), flat(q.codes()), flat(q.scales()), flat(q.zeros()),
                new I64(q.groupSize()), new I32(q.bits()), new I32(mode), new I64(seed), new I64(offset));
    }

    @Override public void dequantizeGroups(QuantizedTensor q, Tensor out) {
        Checks.groupQuant(device, "dequantizeGroups", out, GroupRounding.NEAREST, q);
        k().launch("tally_group_dequantize", blocksFor(out.numel()), THREADS, flat(q.codes()), flat(q.scales()), flat(q.zeros()), flat(out),
                new I64(q.groupSize()), new I32(q.bits()));
    }

    // ---------------- sync ----------------

    /**
     * Waits for the stream; then reports an out-of-range id that an embedding or scatterAddRows queued since the last
     * synchronisation recorded in the error word: an IndexOutOfBoundsException (the CPU's type and wording) naming the
     * first failing call.
     */
    @Override public void synchronize() { synchronize("synchronize()"); }

    /**
     * One stream synchronisation; with id-checked launches pending, the error word's copy is queued behind them first, so
     * the same wait covers it. A set word is cleared (stream-ordered: the non-blocking stream does not synchronize with
     * the legacy default stream) before the failing call's IndexOutOfBoundsException is thrown; {@code where} names the
     * synchronisation in that message.
     */
    private void synchronize(String where) {
        backend.enter();
        if (pendingIds.isEmpty()) {
            backend.synchronize();
            return;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment word = a.allocate(16, 8);
            int rc = cuda_runtime_api_h.cudaMemcpyAsync(word, MemorySegment.ofAddress(backend.errorWord()), 16,
                    cuda_runtime_api_h.cudaMemcpyDeviceToHost, backend.stream());
            backend.synchronize(); // a failed kernel throws here, naming the recent launches; the checks stay pending
            Cuda.check(rc, "cudaMemcpyAsync(error word)");
            long code = word.get(ValueLayout.JAVA_LONG, 0);
            if (code != 0) {
                Cuda.check(cuda_runtime_api_h.cudaMemsetAsync(MemorySegment.ofAddress(backend.errorWord()), 0, 16, backend.stream()),
                        "cudaMemsetAsync(error word)");
            }
            IndexOutOfBoundsException bad = pendingIds.settle(code, word.get(ValueLayout.JAVA_LONG, 8), device, where);
            if (bad != null) throw bad;
        }
    }
}
