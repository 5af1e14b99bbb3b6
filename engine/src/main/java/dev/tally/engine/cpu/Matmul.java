package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Batched matmul with broadcast batch dims over any strided views, on the blocked {@link Gemm}. F32 outputs with unit
 * column stride are written in place; other outputs (bf16, f16, strided columns) get the fp32 product in a scratch
 * buffer first, so accumulation stays fp32 over the whole K before the single rounding to the output dtype.
 */
final class Matmul {
    /** Below this many flops per product, threads cost more than they save. */
    private static final long PARALLEL_FLOPS = 1L << 21;

    private Matmul() {}

    static void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        matmul(a, b, out, alpha, beta, CpuThreads.count());
    }

    static void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta, int threads) {
        int r = out.rank();
        int m = out.dim(-2), n = out.dim(-1), k = a.dim(-1);
        int[] batchDims = Arrays.copyOf(out.dims(), r - 2);
        Shape batch = Shape.of(batchDims);
        long[] as = batchStrides(a, batch), bs = batchStrides(b, batch), os = Arrays.copyOf(out.strides(), r - 2);
        int batches = Math.toIntExact(batch.numel());
        if (batches == 0 || m == 0 || n == 0) return;
        Buf ba = Buf.of(a), bb = Buf.of(b), bo = Buf.of(out);
        boolean direct = out.dtype() == DType.F32 && (n == 1 || out.stride(-1) == 1);
        long flops = 2L * m * n * k;
        float fa = (float) alpha, fb = (float) beta;

        record Job(Gemm.Operand a, Gemm.Operand b, long outOffset) {}
        Job[] jobs = new Job[batches];
        for (int bi = 0; bi < batches; bi++) {
            long ao = a.offset(), bo0 = b.offset(), oo = out.offset();
            long rem = bi;
            for (int i = batchDims.length - 1; i >= 0; i--) {
                long q = rem / batchDims[i];
                long idx = rem - q * batchDims[i];
                ao += idx * as[i];
                bo0 += idx * bs[i];
                oo += idx * os[i];
                rem = q;
            }
            jobs[bi] = new Job(new Gemm.Operand(ba, ao, a.stride(-2), a.stride(-1)),
                    new Gemm.Operand(bb, bo0, b.stride(-2), b.stride(-1)), oo);
        }

        if (direct) {
            MemorySegment seg = bo.seg();
            long ld = out.stride(-2);
            if (batches >= threads && flops * threads < PARALLEL_FLOPS * 64) {
                // many small products (attention heads): one product per task
                CpuThreads.parallelFor(batches, threads, bi -> one(jobs[bi].a, jobs[bi].b,
                        new Gemm.Dest(seg, jobs[bi].outOffset, ld), m, n, k, fa, fb, 1));
            } else {
                for (Job j : jobs) one(j.a, j.b, new Gemm.Dest(seg, j.outOffset, ld), m, n, k, fa, fb, threads);
            }
            return;
        }
        // The same kernel on an fp32 copy of out (its old values when beta != 0), then one rounding into out's dtype:
        // a strided F32 output gets exactly the bits a contiguous one would (results never depend on layout).
        MemorySegment tmp = scratch(Math.multiplyExact(Math.multiplyExact(m, n), 4));
        long om = out.stride(-2), on = out.stride(-1);
        if (out.dtype() == DType.BF16 && on == 1) { // bf16 rows (every product of a bf16 run): convert a row at a time
            for (Job j : jobs) {
                if (beta != 0) bf16Rows(bo.seg(), j.outOffset, om, tmp, m, n, true);
                one(j.a, j.b, new Gemm.Dest(tmp, 0, n), m, n, k, fa, fb, threads);
                bf16Rows(bo.seg(), j.outOffset, om, tmp, m, n, false);
            }
            return;
        }
        for (Job j : jobs) {
            if (beta != 0) {
                for (int i = 0; i < m; i++) {
                    for (int c = 0; c < n; c++) tmp.setAtIndex(Buf.F, (long) i * n + c, bo.getF(j.outOffset + i * om + c * on));
                }
            }
            one(j.a, j.b, new Gemm.Dest(tmp, 0, n), m, n, k, fa, fb, threads);
            for (int i = 0; i < m; i++) {
                for (int c = 0; c < n; c++) bo.set(j.outOffset + i * om + c * on, tmp.getAtIndex(Buf.F, (long) i * n + c));
            }
        }
    }

    /** Outputs up to this many bytes reuse one per-thread fp32 copy (CCE's tiles, 0.5 MB each, hundreds a step). */
    private static final int CACHED_SCRATCH = 8 << 20;
    private static final ThreadLocal<MemorySegment> SCRATCH = ThreadLocal.withInitial(() -> MemorySegment.ofArray(new byte[0]));

    /**
     * An fp32 copy of the output: the calling thread's reused buffer when small (its old contents never matter: beta = 0
     * ignores them and beta ≠ 0 overwrites them with out first), a fresh one when large (the head's logits, once a step).
     */
    private static MemorySegment scratch(int bytes) {
        if (bytes > CACHED_SCRATCH) return MemorySegment.ofArray(new byte[bytes]);
        MemorySegment s = SCRATCH.get();
        if (s.byteSize() < bytes) SCRATCH.set(s = MemorySegment.ofArray(new byte[bytes]));
        return s.asSlice(0, bytes);
    }

    /**
     * Copies the m rows of a bf16 output (row i at {@code offset + i·ld}, unit column stride) into the fp32 scratch
     * ({@code toScratch}: widened, as {@link Buf#getF} reads them) or back (rounded, as {@link Buf#set} writes them), the
     * rows split over the threads: the element-by-element loop below, without its per-element dispatch, a vector at a time.
     */
    private static void bf16Rows(MemorySegment out, long offset, long ld, MemorySegment tmp, int m, int n, boolean toScratch) {
        int tasks = (int) Math.max(1, Math.min(m, (long) m * n / (1 << 16)));
        CpuThreads.parallelFor(tasks, CpuThreads.count(), t -> {
            int i0 = (int) ((long) m * t / tasks), i1 = (int) ((long) m * (t + 1) / tasks);
            for (int i = i0; i < i1; i++) {
                long o = offset + i * ld, f = (long) i * n;
                if (toScratch) Bf16Lanes.widenRow(out, o, tmp, f, n);
                else Bf16Lanes.narrowRow(tmp, f, out, o, n);
            }
        });
    }

    /** One product, split over threads by row ranges (or column ranges when there are few rows). */
    private static void one(Gemm.Operand a, Gemm.Operand b, Gemm.Dest c, int m, int n, int k, float alpha, float beta, int threads) {
        if ((long) m * n * k <= Gemm.SMALL) {
            Gemm.runSmall(a, b, c, m, n, k, alpha, beta);
            return;
        }
        long flops = 2L * m * n * k;
        int t = flops < PARALLEL_FLOPS ? 1 : Math.min(threads, CpuThreads.count());
        if (m == 1 || n == 1) {
            gemv(a, b, c, m, n, k, alpha, beta, t);
            return;
        }
        if (t <= 1) {
            Gemm.run(a, b, c, 0, m, 0, n, k, alpha, beta, Gemm.scratch());
            return;
        }
        int rowBlocks = (m + Gemm.MR - 1) / Gemm.MR, colBlocks = (n + Gemm.NR - 1) / Gemm.NR;
        if (rowBlocks >= t && (colBlocks < t || rowSplitPacks(m, n, k, t) <= colSplitPacks(m, n, k, t))) {
            int tasks = Math.min(t, rowBlocks);
            CpuThreads.parallelFor(tasks, t, task -> {
                int i0 = split(rowBlocks, tasks, task) * Gemm.MR, i1 = Math.min(m, split(rowBlocks, tasks, task + 1) * Gemm.MR);
                if (i0 < i1) Gemm.run(a, b, c, i0, i1, 0, n, k, alpha, beta, Gemm.scratch());
            });
        } else {
            int tasks = Math.min(t, colBlocks);
            CpuThreads.parallelFor(tasks, t, task -> {
                int j0 = split(colBlocks, tasks, task) * Gemm.NR, j1 = Math.min(n, split(colBlocks, tasks, task + 1) * Gemm.NR);
                if (j0 < j1) Gemm.run(a, b, c, 0, m, j0, j1, k, alpha, beta, Gemm.scratch());
            });
        }
    }

    /**
     * Elements one thread packs when the rows are split: all of B, and its rows of A once per NC-wide column block.
     * Splitting the columns instead packs half of B but all of A: the cheaper split wins (the logits' 32000 columns).
     */
    private static long rowSplitPacks(int m, int n, int k, int t) {
        return (long) k * n + (long) (m / t) * k * ((n + Gemm.NC - 1) / Gemm.NC);
    }

    private static long colSplitPacks(int m, int n, int k, int t) {
        return (long) k * (n / t) + (long) m * k * ((n / t + Gemm.NC - 1) / Gemm.NC);
    }

    /**
     * One output row (v = A's row, M = B) or one output column (v = B's column, M = Aᵀ) on {@link Gemv}, split over
     * threads by output ranges (every output's sum is computed by one thread in the same order either way).
     */
    private static void gemv(Gemm.Operand a, Gemm.Operand b, Gemm.Dest c, int m, int n, int k, float alpha, float beta, int t) {
        Gemm.Operand v, mat;
        Gemm.Dest y;
        int len;
        if (m == 1) {
            v = a;
            mat = b;
            y = new Gemm.Dest(c.seg(), c.offset(), 1);
            len = n;
        } else {
            v = new Gemm.Operand(b.buf(), b.offset(), 0, b.rs());
            mat = new Gemm.Operand(a.buf(), a.offset(), a.cs(), a.rs());
            y = c;
            len = m;
        }
        int tasks = Math.max(1, Math.min(t, len / Gemm.NR));
        if (tasks <= 1) {
            Gemv.run(v, mat, y, 0, len, k, alpha, beta, Gemm.scratch());
            return;
        }
        int units = (len + Gemm.NR - 1) / Gemm.NR;
        CpuThreads.parallelFor(tasks, tasks, task -> {
            int j0 = split(units, tasks, task) * Gemm.NR, j1 = Math.min(len, split(units, tasks, task + 1) * Gemm.NR);
            if (j0 < j1) Gemv.run(v, mat, y, j0, j1, k, alpha, beta, Gemm.scratch());
        });
    }

    /** Start of part {@code i} of {@code total} units divided into {@code parts} near-equal parts. */
    private static int split(int total, int parts, int i) {
        return (int) ((long) total * i / parts);
    }

    /** Strides of t's batch dims (all but the last two) aligned to the output batch shape, 0 where broadcast. */
    static long[] batchStrides(Tensor t, Shape batch) {
        int r = batch.rank(), tr = t.rank() - 2;
        long[] s = new long[r];
        long[] ts = t.strides();
        for (int i = 0; i < r; i++) {
            int j = i - (r - tr);
            if (j < 0) continue;
            s[i] = t.dim(j) == 1 ? 0 : ts[j];
        }
        return s;
    }
}
