package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fused causal attention on the CPU, one (batch, head) pair per task: a query row's scores live only in a T-long row
 * buffer, never in a [T, T] tensor, so the memory booked for backward is the row log-sum-exp (O(B·H·T)) instead of the
 * probabilities. The pair's q, k, v (and in backward out, dout) are first copied into per-thread fp32 scratch (O(T·Dh),
 * the way {@link Gemm} packs its panels; any strides and float dtypes), keys also transposed so that a row of scores is
 * broadcast-FMAs over contiguous keys.
 *
 * <p>Reproducibility: every pair is computed by one thread start to finish, each sum runs in a fixed order (scores over
 * Dh, outputs and key/value gradients over rows in index order, lane accumulators combined in lane order), exp is
 * {@link VectorExp}, and only correctly rounded operations (add, mul, fma) are used, so the bits do not depend on the
 * thread count or the JIT tier. Backward recomputes each row's probabilities from the saved lse.
 */
final class FlashAttention {
    private static final VectorSpecies<Float> S = VectorExp.S;
    private static final int L = S.length();
    /** Query rows whose key/value-gradient contributions are applied together (dk, dv rows loaded once per block). */
    private static final int ROWS = 8;

    private FlashAttention() {}

    /** Per-thread scratch, grown to the largest (T, Dh) seen. */
    private static final class Scratch {
        float[] q = new float[0], k = new float[0], kt = new float[0], v = new float[0], vt = new float[0], o = new float[0],
                dout = new float[0], dk = new float[0], dv = new float[0], s = new float[0], p = new float[0], row = new float[0],
                lanes = new float[L], dsBlock = new float[0], pBlock = new float[0];

        void ensure(int t, int tp, int dh) {
            int rows = t * dh, cols = dh * tp;
            if (q.length < rows) {
                q = new float[rows]; k = new float[rows]; v = new float[rows]; o = new float[rows]; dout = new float[rows];
                dk = new float[rows]; dv = new float[rows];
            }
            if (kt.length < cols) {
                kt = new float[cols];
                vt = new float[cols];
            }
            if (s.length < tp) {
                s = new float[tp];
                p = new float[tp];
            }
            if (row.length < dh) row = new float[dh];
            if (dsBlock.length < ROWS * tp) {
                dsBlock = new float[ROWS * tp];
                pBlock = new float[ROWS * tp];
            }
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static void forward(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        int b = q.dim(0), h = q.dim(1), t = q.dim(2), dh = q.dim(3);
        if (q.numel() == 0) return;
        float fs = (float) scale;
        Buf bq = Buf.of(q), bk = Buf.of(k), bv = Buf.of(v), bo = Buf.of(out), bl = Buf.of(lse);
        int tp = Gemm.roundUp(t, L);
        CpuThreads.parallelFor(b * h, CpuThreads.count(), pair -> {
            int bi = pair / h, hi = pair % h;
            Scratch w = SCRATCH.get();
            w.ensure(t, tp, dh);
            load(bq, q, bi, hi, t, dh, w.q, null, 0);
            load(bk, k, bi, hi, t, dh, w.k, w.kt, tp);
            load(bv, v, bi, hi, t, dh, w.v, null, 0);
            for (int i = 0; i < t; i++) {
                int n = i + 1;
                float m = scores(w, i, n, tp, dh, fs);
                double l = probabilities(w, n, m);
                float[] acc = w.row;
                weightedRows(w.p, w.v, n, dh, acc);
                float inv = (float) (1.0 / l);
                long ob = offset(out, bi, hi, i);
                for (int d = 0; d < dh; d++) bo.set(ob + d * out.stride(3), acc[d] * inv);
                bl.set(lse.offset() + bi * lse.stride(0) + hi * lse.stride(1) + i * lse.stride(2), m + Math.log(l));
            }
        });
    }

    static void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                         Tensor dq, Tensor dk, Tensor dv) {
        int b = q.dim(0), h = q.dim(1), t = q.dim(2), dh = q.dim(3);
        if (q.numel() == 0) return;
        float fs = (float) scale;
        Buf bq = Buf.of(q), bk = Buf.of(k), bv = Buf.of(v), bo = Buf.of(out), bl = Buf.of(lse), bg = Buf.of(dout);
        int tp = Gemm.roundUp(t, L);
        CpuThreads.parallelFor(b * h, CpuThreads.count(), pair -> {
            int bi = pair / h, hi = pair % h;
            Scratch w = SCRATCH.get();
            w.ensure(t, tp, dh);
            load(bq, q, bi, hi, t, dh, w.q, null, 0);
            load(bk, k, bi, hi, t, dh, w.k, w.kt, tp);
            load(bv, v, bi, hi, t, dh, w.v, w.vt, tp);
            load(bo, out, bi, hi, t, dh, w.o, null, 0);
            load(bg, dout, bi, hi, t, dh, w.dout, null, 0);
            java.util.Arrays.fill(w.dk, 0, t * dh, 0f);
            java.util.Arrays.fill(w.dv, 0, t * dh, 0f);
            for (int i0 = 0; i0 < t; i0 += ROWS) {
                int rows = Math.min(ROWS, t - i0);
                for (int i = i0; i < i0 + rows; i++) {
                    int n = i + 1, nPad = Gemm.roundUp(n, L);
                    float rowLse = bl.getF(lse.offset() + bi * lse.stride(0) + hi * lse.stride(1) + i * lse.stride(2));
                    scores(w, i, n, tp, dh, fs);
                    // p = exp(s − lse), zero past the causal edge
                    FloatVector shift = FloatVector.broadcast(S, rowLse);
                    for (int j = 0; j < nPad; j += L) VectorExp.expNonPositive(FloatVector.fromArray(S, w.s, j).sub(shift).min(0f)).intoArray(w.p, j);
                    for (int j = n; j < nPad; j++) w.p[j] = 0f;
                    // dp_j = dout_i · v_j (over contiguous keys), then ds = p (dp − D_i) with D_i = dout_i · out_i
                    transposedProduct(w.dout, i * dh, w.vt, tp, nPad, dh, w.s);
                    float di = 0f;
                    for (int d = 0; d < dh; d++) di = Math.fma(w.dout[i * dh + d], w.o[i * dh + d], di);
                    FloatVector vd = FloatVector.broadcast(S, di);
                    for (int j = 0; j < nPad; j += L) {
                        FloatVector.fromArray(S, w.p, j).mul(FloatVector.fromArray(S, w.s, j).sub(vd)).intoArray(w.s, j); // s now holds ds
                    }
                    for (int j = 0; j < nPad; j += L) FloatVector.fromArray(S, w.s, j).mul(fs).intoArray(w.s, j); // ds · scale
                    float[] dqRow = w.row;
                    weightedRows(w.s, w.k, n, dh, dqRow);
                    System.arraycopy(w.s, 0, w.dsBlock, (i - i0) * tp, n);
                    System.arraycopy(w.p, 0, w.pBlock, (i - i0) * tp, n);
                    if (dq != null) accumulate(Buf.of(dq), offset(dq, bi, hi, i), dq.stride(3), dqRow, 0, dh);
                }
                for (int j = 0; j < i0 + rows; j++) keyUpdate(w, i0, Math.max(0, j - i0), rows, j, tp, dh);
            }
            for (int j = 0; j < t; j++) {
                if (dk != null) accumulate(Buf.of(dk), offset(dk, bi, hi, j), dk.stride(3), w.dk, j * dh, dh);
                if (dv != null) accumulate(Buf.of(dv), offset(dv, bi, hi, j), dv.stride(3), w.dv, j * dh, dh);
            }
        });
    }

    /** s[0, nPad) = scale · (q_i · k_j), s[j ≥ n] = −∞; returns max over j < n. */
    private static float scores(Scratch w, int i, int n, int tp, int dh, float scale) {
        int nPad = Gemm.roundUp(n, L);
        transposedProduct(w.q, i * dh, w.kt, tp, nPad, dh, w.s);
        FloatVector vs = FloatVector.broadcast(S, scale);
        for (int j = 0; j < nPad; j += L) FloatVector.fromArray(S, w.s, j).mul(vs).intoArray(w.s, j);
        for (int j = n; j < nPad; j++) w.s[j] = Float.NEGATIVE_INFINITY;
        FloatVector vm = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < nPad; j += L) vm = vm.max(FloatVector.fromArray(S, w.s, j));
        return vm.reduceLanes(VectorOperators.MAX); // max is exact in any order
    }

    /** p[j] = exp(s[j] − m) for j < n, 0 beyond; returns Σ p (lane sums combined in lane order, in double). */
    private static double probabilities(Scratch w, int n, float m) {
        int nPad = Gemm.roundUp(n, L);
        FloatVector shift = FloatVector.broadcast(S, m), acc = FloatVector.zero(S);
        for (int j = 0; j < nPad; j += L) {
            FloatVector e = VectorExp.expNonPositive(FloatVector.fromArray(S, w.s, j).sub(shift));
            e.intoArray(w.p, j);
        }
        for (int j = n; j < nPad; j++) w.p[j] = 0f;
        for (int j = 0; j < nPad; j += L) acc = acc.add(FloatVector.fromArray(S, w.p, j));
        acc.intoArray(w.lanes, 0);
        double l = 0;
        for (float x : w.lanes) l += x;
        return l;
    }

    /**
     * out[j] = Σ_d x[xo + d] · cols[d·tp + j] for j in [0, nPad): per chunk of L keys the sum over d runs in a register
     * (one load and one FMA per step), in ascending d.
     */
    private static void transposedProduct(float[] x, int xo, float[] cols, int tp, int nPad, int dh, float[] out) {
        for (int j = 0; j < nPad; j += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int d = 0; d < dh; d++) acc = FloatVector.broadcast(S, x[xo + d]).fma(FloatVector.fromArray(S, cols, d * tp + j), acc);
            acc.intoArray(out, j);
        }
    }

    /** out[d] = Σ_{j < n} weight[j] · rows[j·dh + d], in ascending j, with register accumulators per chunk of L. */
    private static void weightedRows(float[] weight, float[] rows, int n, int dh, float[] out) {
        int d = 0;
        for (; d + L <= dh; d += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int j = 0; j < n; j++) acc = FloatVector.broadcast(S, weight[j]).fma(FloatVector.fromArray(S, rows, j * dh + d), acc);
            acc.intoArray(out, d);
        }
        for (; d < dh; d++) {
            float acc = 0f;
            for (int j = 0; j < n; j++) acc = Math.fma(weight[j], rows[j * dh + d], acc);
            out[d] = acc;
        }
    }

    /**
     * dk_j += Σ_r ds[r][j] · q_{i0+r} and dv_j += Σ_r p[r][j] · dout_{i0+r} over the block's rows r ≥ r0 (those whose
     * query may see key j), in ascending row order — the order a row-at-a-time update would use, with dk_j, dv_j loaded
     * and stored once per block instead of once per row.
     */
    private static void keyUpdate(Scratch w, int i0, int r0, int rows, int j, int tp, int dh) {
        int d = 0;
        for (; d + L <= dh; d += L) {
            FloatVector ak = FloatVector.fromArray(S, w.dk, j * dh + d), av = FloatVector.fromArray(S, w.dv, j * dh + d);
            for (int r = r0; r < rows; r++) {
                int i = i0 + r;
                ak = FloatVector.broadcast(S, w.dsBlock[r * tp + j]).fma(FloatVector.fromArray(S, w.q, i * dh + d), ak);
                av = FloatVector.broadcast(S, w.pBlock[r * tp + j]).fma(FloatVector.fromArray(S, w.dout, i * dh + d), av);
            }
            ak.intoArray(w.dk, j * dh + d);
            av.intoArray(w.dv, j * dh + d);
        }
        for (; d < dh; d++) {
            float ak = w.dk[j * dh + d], av = w.dv[j * dh + d];
            for (int r = r0; r < rows; r++) {
                int i = i0 + r;
                ak = Math.fma(w.dsBlock[r * tp + j], w.q[i * dh + d], ak);
                av = Math.fma(w.pBlock[r * tp + j], w.dout[i * dh + d], av);
            }
            w.dk[j * dh + d] = ak;
            w.dv[j * dh + d] = av;
        }
    }

    /** Element (bi, hi, row, 0) of a [B, H, T, Dh] view. */
    private static long offset(Tensor x, int bi, int hi, int row) {
        return x.offset() + bi * x.stride(0) + hi * x.stride(1) + row * x.stride(2);
    }

    /** The pair's [T, Dh] block as fp32 rows, and (if {@code cols} is given) transposed into [Dh, tp] with zero padding. */
    private static void load(Buf buf, Tensor x, int bi, int hi, int t, int dh, float[] rows, float[] cols, int tp) {
        long sd = x.stride(3);
        for (int r = 0; r < t; r++) {
            long base = offset(x, bi, hi, r);
            for (int d = 0; d < dh; d++) rows[r * dh + d] = buf.getF(base + d * sd);
        }
        if (cols == null) return;
        for (int d = 0; d < dh; d++) {
            for (int r = 0; r < t; r++) cols[d * tp + r] = rows[r * dh + d];
            for (int r = t; r < tp; r++) cols[d * tp + r] = 0f;
        }
    }

    private static void accumulate(Buf buf, long base, long stride, float[] src, int so, int len) {
        for (int d = 0; d < len; d++) buf.set(base + d * stride, buf.getF(base + d * stride) + src[so + d]);
    }
}
