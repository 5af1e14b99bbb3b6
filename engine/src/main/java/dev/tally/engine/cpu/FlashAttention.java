package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Fused causal attention on the CPU: scores and probabilities exist only as small per-thread tiles, never as a
 * [B, H, T, T] tensor, so what backward needs besides the inputs and the output is the row log-sum-exp (O(B·H·T)).
 *
 * <p>Speed comes from register-blocked tiles: {@link #scoreTile} computes {@value #RB} query rows × {@code 2·L} keys per
 * pass over the head dimension (each loaded key vector serves {@value #RB} rows), {@link #rowTile} accumulates
 * {@value #RB} output rows × {@code 2·L} columns per pass over the summed index; tiles entirely above the causal
 * diagonal are skipped. Inputs are first copied into per-thread fp32 scratch (any strides and float dtypes) in the layouts
 * the tiles read: rows padded to a multiple of the tile width, keys also transposed.
 *
 * <p>Work split: forward runs one task per (batch, head, block of {@value #BQ} queries); backward one task per (batch,
 * head), which walks key blocks in order and accumulates dq, dk, dv in its own scratch (no two threads ever write the
 * same element). Reproducibility: every element is one sum in a fixed order — scores over Dh ascending, outputs and dq
 * over keys ascending, dk and dv over queries ascending — continued from the stored partial sum across tiles, with exp
 * from {@link VectorExp}, lane sums combined in lane order, and only correctly rounded operations, so the bits do not
 * depend on the thread count or the JIT tier. Backward recomputes the probabilities tile by tile from the saved lse.
 */
final class FlashAttention {
    private static final VectorSpecies<Float> S = VectorExp.S;
    private static final int L = S.length();
    /** Rows of a register tile. */
    private static final int RB = 4;
    /** Columns of a register tile (two vectors). */
    private static final int CW = 2 * L;
    /** Query rows per forward task and per backward tile; key columns per backward tile. Multiples of RB and CW. */
    private static final int BQ = 64, BK = 64;

    private FlashAttention() {}

    static int roundUp(int x, int m) { return (x + m - 1) / m * m; }

    /**
     * Row stride of a transposed [Dh, keys] block: the keys rounded up to the tile width, plus one vector, so that
     * consecutive rows (one per head dimension, all read by each tile) do not fall on the same few cache sets the way a
     * power-of-two stride (T = 256, 1024) makes them.
     */
    static int transposedStride(int keys) { return roundUp(keys, Math.max(CW, BK)) + L; }

    /** Per-thread scratch, grown on demand and reused. */
    private static final class Scratch {
        float[] q = new float[0], k = new float[0], kt = new float[0], vt = new float[0], v = new float[0], dout = new float[0],
                dq = new float[0], dkb = new float[0], dvb = new float[0], s = new float[0], dp = new float[0],
                lse = new float[0], delta = new float[0], lanes = new float[L], row = new float[0];

        static float[] grow(float[] a, int n) { return a.length >= n ? a : new float[n]; }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    // ------------------------------------------------------------------ forward

    static void forward(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        int b = q.dim(0), h = q.dim(1), t = q.dim(2), dh = q.dim(3);
        if (q.numel() == 0) return;
        float fs = (float) scale;
        int blocks = (t + BQ - 1) / BQ;
        Buf bl = Buf.of(lse);
        CpuThreads.parallelFor(b * h * blocks, CpuThreads.count(), task -> {
            int pair = task / blocks, blk = task % blocks, bi = pair / h, hi = pair % h;
            forwardBlock(q, k, v, fs, out, bl, lse, bi, hi, blk * BQ, t, dh);
        });
    }

    /** Queries [i0, i0 + BQ) of one (batch, head) pair: they see keys [0, i0 + rows). */
    private static void forwardBlock(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Buf bl, Tensor lse,
                                     int bi, int hi, int i0, int t, int dh) {
        int rows = Math.min(BQ, t - i0), rowsPad = roundUp(rows, RB), n = i0 + rows, np = transposedStride(n), dhp = roundUp(dh, CW);
        Scratch w = SCRATCH.get();
        w.q = Scratch.grow(w.q, rowsPad * dhp);
        w.kt = Scratch.grow(w.kt, dh * np);
        w.v = Scratch.grow(w.v, np * dhp);
        w.s = Scratch.grow(w.s, rowsPad * np);
        w.dq = Scratch.grow(w.dq, rowsPad * dhp); // the output rows
        w.row = Scratch.grow(w.row, dh);
        loadRows(q, bi, hi, i0, rows, rowsPad, dh, dhp, w.q, w.row);
        loadTransposed(k, bi, hi, n, np, dh, w.kt, w.row);
        loadRows(v, bi, hi, 0, n, np, dh, dhp, w.v, w.row);
        float[] s = w.s, o = w.dq;
        for (int r0 = 0; r0 < rowsPad; r0 += RB) {
            int visible = Math.min(n, i0 + r0 + RB);
            scoreTile(w.q, r0 * dhp, dhp, dh, w.kt, 0, np, roundUp(visible, CW), s, r0 * np, np);
        }
        long lseBase = lse.offset() + bi * lse.stride(0) + hi * lse.stride(1);
        for (int r = 0; r < rowsPad; r++) {
            int so = r * np;
            if (r >= rows) {
                Arrays.fill(s, so, so + np, 0f);
                continue;
            }
            int count = i0 + r + 1; // keys this query sees
            float m = rowMax(s, so, count, scale);
            double l = expRow(s, so, count, scale, m, w.lanes);
            float inv = (float) (1.0 / l);
            int cp = roundUp(count, L);
            FloatVector vi = FloatVector.broadcast(S, inv);
            for (int j = 0; j < cp; j += L) FloatVector.fromArray(S, s, so + j).mul(vi).intoArray(s, so + j);
            Arrays.fill(s, so + cp, so + np, 0f);
            bl.set(lseBase + (i0 + r) * lse.stride(2), m + Math.log(l));
        }
        Arrays.fill(o, 0, rowsPad * dhp, 0f);
        for (int r0 = 0; r0 < rowsPad; r0 += RB) {
            int visible = Math.min(n, i0 + r0 + RB);
            rowTile(s, r0 * np, np, 1, 0, visible, w.v, 0, dhp, o, r0 * dhp, dhp, dhp);
        }
        storeRows(out, bi, hi, i0, rows, dh, dhp, o, w.row, false);
    }

    /** max_j scale·s[so + j] over j < count (exact in any order). */
    private static float rowMax(float[] s, int so, int count, float scale) {
        float m = Float.NEGATIVE_INFINITY;
        int j = 0;
        if (count >= L) {
            FloatVector vm = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (; j + L <= count; j += L) vm = vm.max(FloatVector.fromArray(S, s, so + j).mul(scale));
            for (int x = 0; x < L; x++) m = Math.max(m, vm.lane(x));
        }
        for (; j < count; j++) m = Math.max(m, s[so + j] * scale);
        return m;
    }

    /**
     * s[so + j] = exp(scale·s[so + j] − m) for j < count, 0 for the rest of the last vector; returns their sum (lane
     * accumulators combined in lane order, in double).
     */
    private static double expRow(float[] s, int so, int count, float scale, float m, float[] lanes) {
        int cp = roundUp(count, L);
        FloatVector shift = FloatVector.broadcast(S, m), acc = FloatVector.zero(S);
        for (int j = 0; j < cp; j += L) {
            VectorExp.expNonPositive(FloatVector.fromArray(S, s, so + j).mul(scale).sub(shift)).intoArray(s, so + j);
        }
        for (int j = count; j < cp; j++) s[so + j] = 0f;
        for (int j = 0; j < cp; j += L) acc = acc.add(FloatVector.fromArray(S, s, so + j));
        acc.intoArray(lanes, 0);
        double l = 0;
        for (float x : lanes) l += x;
        return l;
    }

    // ------------------------------------------------------------------ backward

    static void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                         Tensor dq, Tensor dk, Tensor dv) {
        int b = q.dim(0), h = q.dim(1), t = q.dim(2), dh = q.dim(3);
        if (q.numel() == 0 || (dq == null && dk == null && dv == null)) return;
        float fs = (float) scale;
        Buf bl = Buf.of(lse);
        CpuThreads.parallelFor(b * h, CpuThreads.count(), pair -> backwardPair(q, k, v, out, bl, lse, dout, fs, dq, dk, dv, pair / h, pair % h, t, dh));
    }

    /**
     * One (batch, head) pair, key blocks outer and query blocks inner (those that see the key block): per tile it
     * recomputes p = exp(scale·q·kᵀ − lse) and dp = dout·vᵀ, forms ds = p (dp − D) scale with D = dout·out per row, and
     * accumulates dv += pᵀ dout, dk += dsᵀ q (the key block's own rows) and dq += ds k (the pair's rows, over key blocks
     * in order).
     */
    private static void backwardPair(Tensor q, Tensor k, Tensor v, Tensor out, Buf bl, Tensor lse, Tensor dout, float scale,
                                     Tensor dq, Tensor dk, Tensor dv, int bi, int hi, int t, int dh) {
        int tp = roundUp(t, Math.max(BQ, BK)), ld = transposedStride(t), dhp = roundUp(dh, CW);
        Scratch w = SCRATCH.get();
        w.q = Scratch.grow(w.q, tp * dhp);
        w.k = Scratch.grow(w.k, tp * dhp);
        w.dout = Scratch.grow(w.dout, tp * dhp);
        w.kt = Scratch.grow(w.kt, dh * ld);
        w.vt = Scratch.grow(w.vt, dh * ld);
        w.dq = Scratch.grow(w.dq, tp * dhp);
        w.dkb = Scratch.grow(w.dkb, BK * dhp);
        w.dvb = Scratch.grow(w.dvb, BK * dhp);
        w.s = Scratch.grow(w.s, BQ * BK);
        w.dp = Scratch.grow(w.dp, BQ * BK);
        w.lse = Scratch.grow(w.lse, tp);
        w.delta = Scratch.grow(w.delta, tp);
        w.row = Scratch.grow(w.row, dh);
        loadRows(q, bi, hi, 0, t, tp, dh, dhp, w.q, w.row);
        loadRows(k, bi, hi, 0, t, tp, dh, dhp, w.k, w.row);
        loadRows(dout, bi, hi, 0, t, tp, dh, dhp, w.dout, w.row);
        loadTransposed(k, bi, hi, t, ld, dh, w.kt, w.row);
        loadTransposed(v, bi, hi, t, ld, dh, w.vt, w.row);
        // D_i = dout_i · out_i (ascending d, fused multiply-adds), and the row lse
        Buf bo = Buf.of(out);
        long lseBase = lse.offset() + bi * lse.stride(0) + hi * lse.stride(1);
        for (int i = 0; i < t; i++) {
            readRow(bo, out, offset(out, bi, hi, i), dh, w.row);
            float di = 0f;
            for (int d = 0; d < dh; d++) di = Math.fma(w.dout[i * dhp + d], w.row[d], di);
            w.delta[i] = di;
            w.lse[i] = bl.getF(lseBase + i * lse.stride(2));
        }
        if (dq != null) Arrays.fill(w.dq, 0, tp * dhp, 0f);
        float[] p = w.s, ds = w.dp;
        for (int j0 = 0; j0 < t; j0 += BK) {
            Arrays.fill(w.dkb, 0, BK * dhp, 0f);
            Arrays.fill(w.dvb, 0, BK * dhp, 0f);
            for (int i0 = j0 / BQ * BQ; i0 < t; i0 += BQ) {
                int rows = Math.min(BQ, t - i0);
                // scores and dp for the row tiles that see any key of the block
                for (int r0 = 0; r0 < BQ; r0 += RB) {
                    int visible = Math.min(BK, i0 + r0 + RB - j0); // keys of the block the tile's last row sees
                    if (visible <= 0 || r0 >= rows) continue;
                    int width = roundUp(visible, CW);
                    scoreTile(w.q, (i0 + r0) * dhp, dhp, dh, w.kt, j0, ld, width, p, r0 * BK, BK);
                    scoreTile(w.dout, (i0 + r0) * dhp, dhp, dh, w.vt, j0, ld, width, ds, r0 * BK, BK);
                }
                for (int r = 0; r < BQ; r++) {
                    int i = i0 + r, so = r * BK, count = Math.min(BK, i - j0 + 1);
                    if (r >= rows || count <= 0) {
                        Arrays.fill(p, so, so + BK, 0f);
                        Arrays.fill(ds, so, so + BK, 0f);
                        continue;
                    }
                    probabilitiesAndScoreGradient(p, ds, so, count, scale, w.lse[i], w.delta[i]);
                }
                // dv (key rows) += pᵀ dout, dk += dsᵀ q, over the block's queries that see each key tile, ascending
                for (int c0 = 0; c0 < BK && j0 + c0 < t; c0 += RB) {
                    int from = Math.max(0, j0 + c0 - i0);
                    if (from >= rows) continue;
                    if (dv != null) rowTile(p, c0, 1, BK, from, rows, w.dout, i0 * dhp, dhp, w.dvb, c0 * dhp, dhp, dhp);
                    if (dk != null) rowTile(ds, c0, 1, BK, from, rows, w.q, i0 * dhp, dhp, w.dkb, c0 * dhp, dhp, dhp);
                }
                // dq (query rows) += ds k, over the keys of the block each row tile sees, ascending
                if (dq != null) {
                    for (int r0 = 0; r0 < rows; r0 += RB) {
                        int visible = Math.min(Math.min(BK, t - j0), i0 + r0 + RB - j0);
                        if (visible <= 0) continue;
                        rowTile(ds, r0 * BK, BK, 1, 0, visible, w.k, j0 * dhp, dhp, w.dq, (i0 + r0) * dhp, dhp, dhp);
                    }
                }
            }
            int keys = Math.min(BK, t - j0);
            if (dk != null) accumulateRows(dk, bi, hi, j0, keys, dh, dhp, w.dkb, w.row);
            if (dv != null) accumulateRows(dv, bi, hi, j0, keys, dh, dhp, w.dvb, w.row);
        }
        if (dq != null) accumulateRows(dq, bi, hi, 0, t, dh, dhp, w.dq, w.row);
    }

    /**
     * Row of a tile: p = exp(min(scale·s − lse, 0)) for the {@code count} visible keys, 0 beyond; ds = p (dp − D) scale.
     * On entry p holds the raw scores and ds the raw dp.
     */
    private static void probabilitiesAndScoreGradient(float[] p, float[] ds, int so, int count, float scale, float rowLse, float delta) {
        int cp = roundUp(count, L);
        FloatVector shift = FloatVector.broadcast(S, rowLse), vd = FloatVector.broadcast(S, delta), vs = FloatVector.broadcast(S, scale);
        for (int j = 0; j < cp; j += L) {
            FloatVector pj = VectorExp.expNonPositive(FloatVector.fromArray(S, p, so + j).mul(vs).sub(shift).min(0f));
            pj.intoArray(p, so + j);
            pj.mul(FloatVector.fromArray(S, ds, so + j).sub(vd)).mul(vs).intoArray(ds, so + j);
        }
        for (int j = count; j < cp; j++) {
            p[so + j] = 0f;
            ds[so + j] = 0f;
        }
        Arrays.fill(p, so + cp, so + BK, 0f);
        Arrays.fill(ds, so + cp, so + BK, 0f);
    }

    // ------------------------------------------------------------------ register tiles

    /**
     * s[so + r·sRow + c] = Σ_{d < dh} a[ao + r·aRow + d] · bt[bo + d·bRow + c] for the RB rows r and columns c in
     * [0, width) (width a multiple of CW): per column pair of vectors, RB × 2 accumulators summed over ascending d.
     */
    static void scoreTile(float[] a, int ao, int aRow, int dh, float[] bt, int bo, int bRow, int width, float[] s, int so, int sRow) {
        int a0 = ao, a1 = ao + aRow, a2 = ao + 2 * aRow, a3 = ao + 3 * aRow;
        int c = 0;
        for (; c + 2 * CW <= width; c += 2 * CW) scoreTileWide(a, a0, a1, a2, a3, dh, bt, bo + c, bRow, s, so + c, sRow);
        for (; c < width; c += CW) {
            FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S), c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
            FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S), c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
            for (int d = 0; d < dh; d++) {
                int bp = bo + d * bRow + c;
                FloatVector b0 = FloatVector.fromArray(S, bt, bp), b1 = FloatVector.fromArray(S, bt, bp + L);
                FloatVector x = FloatVector.broadcast(S, a[a0 + d]);
                c00 = x.fma(b0, c00);
                c01 = x.fma(b1, c01);
                x = FloatVector.broadcast(S, a[a1 + d]);
                c10 = x.fma(b0, c10);
                c11 = x.fma(b1, c11);
                x = FloatVector.broadcast(S, a[a2 + d]);
                c20 = x.fma(b0, c20);
                c21 = x.fma(b1, c21);
                x = FloatVector.broadcast(S, a[a3 + d]);
                c30 = x.fma(b0, c30);
                c31 = x.fma(b1, c31);
            }
            int sp = so + c;
            c00.intoArray(s, sp);
            c01.intoArray(s, sp + L);
            c10.intoArray(s, sp + sRow);
            c11.intoArray(s, sp + sRow + L);
            c20.intoArray(s, sp + 2 * sRow);
            c21.intoArray(s, sp + 2 * sRow + L);
            c30.intoArray(s, sp + 3 * sRow);
            c31.intoArray(s, sp + 3 * sRow + L);
        }
    }

    /** {@link #scoreTile} for one run of 4 vectors of columns: RB × 4 accumulators, the same sums in the same order. */
    private static void scoreTileWide(float[] a, int a0, int a1, int a2, int a3, int dh, float[] bt, int bo, int bRow, float[] s, int sp, int sRow) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S), c02 = FloatVector.zero(S), c03 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S), c12 = FloatVector.zero(S), c13 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S), c22 = FloatVector.zero(S), c23 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S), c32 = FloatVector.zero(S), c33 = FloatVector.zero(S);
        for (int d = 0; d < dh; d++) {
            int bp = bo + d * bRow;
            FloatVector b0 = FloatVector.fromArray(S, bt, bp), b1 = FloatVector.fromArray(S, bt, bp + L);
            FloatVector b2 = FloatVector.fromArray(S, bt, bp + 2 * L), b3 = FloatVector.fromArray(S, bt, bp + 3 * L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + d]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            c03 = x.fma(b3, c03);
            x = FloatVector.broadcast(S, a[a1 + d]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            c13 = x.fma(b3, c13);
            x = FloatVector.broadcast(S, a[a2 + d]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            c23 = x.fma(b3, c23);
            x = FloatVector.broadcast(S, a[a3 + d]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
            c33 = x.fma(b3, c33);
        }
        store4(s, sp, c00, c01, c02, c03);
        store4(s, sp + sRow, c10, c11, c12, c13);
        store4(s, sp + 2 * sRow, c20, c21, c22, c23);
        store4(s, sp + 3 * sRow, c30, c31, c32, c33);
    }

    private static void store4(float[] s, int p, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        v0.intoArray(s, p);
        v1.intoArray(s, p + L);
        v2.intoArray(s, p + 2 * L);
        v3.intoArray(s, p + 3 * L);
    }

    /** {@link #rowTile} for one run of 4 vectors of columns: RB × 4 accumulators, the same sums in the same order. */
    private static void rowTileWide(float[] a, int a0, int a1, int a2, int a3, int aK, int k0, int k1, float[] b, int bo, int bRow,
                                    float[] c, int cp, int cRow) {
        FloatVector c00 = FloatVector.fromArray(S, c, cp), c01 = FloatVector.fromArray(S, c, cp + L);
        FloatVector c02 = FloatVector.fromArray(S, c, cp + 2 * L), c03 = FloatVector.fromArray(S, c, cp + 3 * L);
        int p1 = cp + cRow, p2 = cp + 2 * cRow, p3 = cp + 3 * cRow;
        FloatVector c10 = FloatVector.fromArray(S, c, p1), c11 = FloatVector.fromArray(S, c, p1 + L);
        FloatVector c12 = FloatVector.fromArray(S, c, p1 + 2 * L), c13 = FloatVector.fromArray(S, c, p1 + 3 * L);
        FloatVector c20 = FloatVector.fromArray(S, c, p2), c21 = FloatVector.fromArray(S, c, p2 + L);
        FloatVector c22 = FloatVector.fromArray(S, c, p2 + 2 * L), c23 = FloatVector.fromArray(S, c, p2 + 3 * L);
        FloatVector c30 = FloatVector.fromArray(S, c, p3), c31 = FloatVector.fromArray(S, c, p3 + L);
        FloatVector c32 = FloatVector.fromArray(S, c, p3 + 2 * L), c33 = FloatVector.fromArray(S, c, p3 + 3 * L);
        for (int kk = k0; kk < k1; kk++) {
            int bp = bo + kk * bRow, ak = kk * aK;
            FloatVector b0 = FloatVector.fromArray(S, b, bp), b1 = FloatVector.fromArray(S, b, bp + L);
            FloatVector b2 = FloatVector.fromArray(S, b, bp + 2 * L), b3 = FloatVector.fromArray(S, b, bp + 3 * L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            c03 = x.fma(b3, c03);
            x = FloatVector.broadcast(S, a[a1 + ak]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            c13 = x.fma(b3, c13);
            x = FloatVector.broadcast(S, a[a2 + ak]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            c23 = x.fma(b3, c23);
            x = FloatVector.broadcast(S, a[a3 + ak]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
            c33 = x.fma(b3, c33);
        }
        store4(c, cp, c00, c01, c02, c03);
        store4(c, p1, c10, c11, c12, c13);
        store4(c, p2, c20, c21, c22, c23);
        store4(c, p3, c30, c31, c32, c33);
    }

    /**
     * c[co + r·cRow + x] += Σ_{k0 ≤ k < k1} a[ao + r·aRow + k·aK] · b[bo + k·bRow + x] for the RB rows r and columns x in
     * [0, cols) (a multiple of CW): the partial sums are loaded, continued over ascending k in registers, and stored.
     */
    static void rowTile(float[] a, int ao, int aRow, int aK, int k0, int k1, float[] b, int bo, int bRow,
                        float[] c, int co, int cRow, int cols) {
        int a0 = ao, a1 = ao + aRow, a2 = ao + 2 * aRow, a3 = ao + 3 * aRow;
        int x0 = 0;
        for (; x0 + 2 * CW <= cols; x0 += 2 * CW) rowTileWide(a, a0, a1, a2, a3, aK, k0, k1, b, bo + x0, bRow, c, co + x0, cRow);
        for (; x0 < cols; x0 += CW) {
            int cp = co + x0;
            FloatVector c00 = FloatVector.fromArray(S, c, cp), c01 = FloatVector.fromArray(S, c, cp + L);
            FloatVector c10 = FloatVector.fromArray(S, c, cp + cRow), c11 = FloatVector.fromArray(S, c, cp + cRow + L);
            FloatVector c20 = FloatVector.fromArray(S, c, cp + 2 * cRow), c21 = FloatVector.fromArray(S, c, cp + 2 * cRow + L);
            FloatVector c30 = FloatVector.fromArray(S, c, cp + 3 * cRow), c31 = FloatVector.fromArray(S, c, cp + 3 * cRow + L);
            for (int kk = k0; kk < k1; kk++) {
                int bp = bo + kk * bRow + x0, ak = kk * aK;
                FloatVector b0 = FloatVector.fromArray(S, b, bp), b1 = FloatVector.fromArray(S, b, bp + L);
                FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
                c00 = x.fma(b0, c00);
                c01 = x.fma(b1, c01);
                x = FloatVector.broadcast(S, a[a1 + ak]);
                c10 = x.fma(b0, c10);
                c11 = x.fma(b1, c11);
                x = FloatVector.broadcast(S, a[a2 + ak]);
                c20 = x.fma(b0, c20);
                c21 = x.fma(b1, c21);
                x = FloatVector.broadcast(S, a[a3 + ak]);
                c30 = x.fma(b0, c30);
                c31 = x.fma(b1, c31);
            }
            c00.intoArray(c, cp);
            c01.intoArray(c, cp + L);
            c10.intoArray(c, cp + cRow);
            c11.intoArray(c, cp + cRow + L);
            c20.intoArray(c, cp + 2 * cRow);
            c21.intoArray(c, cp + 2 * cRow + L);
            c30.intoArray(c, cp + 3 * cRow);
            c31.intoArray(c, cp + 3 * cRow + L);
        }
    }

    // ------------------------------------------------------------------ loading and storing

    /** Element (bi, hi, row, 0) of a [B, H, T, Dh] view. */
    private static long offset(Tensor x, int bi, int hi, int row) {
        return x.offset() + bi * x.stride(0) + hi * x.stride(1) + row * x.stride(2);
    }

    /** Rows [r0, r0 + rows) of the pair as fp32 into dst[r·dhp + d]; padding columns and rows up to {@code rowsPad} zero. */
    private static void loadRows(Tensor x, int bi, int hi, int r0, int rows, int rowsPad, int dh, int dhp, float[] dst, float[] row) {
        Buf buf = Buf.of(x);
        for (int r = 0; r < rows; r++) {
            readRow(buf, x, offset(x, bi, hi, r0 + r), dh, row);
            System.arraycopy(row, 0, dst, r * dhp, dh);
            Arrays.fill(dst, r * dhp + dh, (r + 1) * dhp, 0f);
        }
        Arrays.fill(dst, rows * dhp, rowsPad * dhp, 0f);
    }

    /** Rows [0, rows) of the pair transposed into dst[d·ld + r]; columns [rows, ld) zero. */
    private static void loadTransposed(Tensor x, int bi, int hi, int rows, int ld, int dh, float[] dst, float[] row) {
        Buf buf = Buf.of(x);
        for (int r = 0; r < rows; r++) {
            readRow(buf, x, offset(x, bi, hi, r), dh, row);
            for (int d = 0; d < dh; d++) dst[d * ld + r] = row[d];
        }
        for (int d = 0; d < dh; d++) Arrays.fill(dst, d * ld + rows, (d + 1) * ld, 0f);
    }

    /**
     * Row base..base+dh of x into row[0, dh) as fp32. Contiguous F32 rows are a memory copy and contiguous bf16 rows a
     * vector widening (exact, as {@link Buf#getF}); other layouts and dtypes go element by element.
     */
    private static void readRow(Buf buf, Tensor x, long base, int dh, float[] row) {
        long sd = x.stride(3);
        if (x.dtype() == DType.F32 && sd == 1) {
            MemorySegment.copy(buf.seg(), Buf.F, base * 4, row, 0, dh);
        } else if (x.dtype() == DType.BF16 && sd == 1) {
            Bf16Lanes.widenRow(buf.seg(), base, MemorySegment.ofArray(row), 0, dh);
        } else {
            for (int d = 0; d < dh; d++) row[d] = buf.getF(base + d * sd);
        }
    }

    /** row[0, dh) into x's row at base; contiguous bf16 rows rounded a vector at a time with {@link Buf#set}'s bits. */
    private static void writeRow(Buf buf, Tensor x, long base, int dh, float[] row) {
        long sd = x.stride(3);
        if (x.dtype() == DType.F32 && sd == 1) {
            MemorySegment.copy(row, 0, buf.seg(), Buf.F, base * 4, dh);
        } else if (x.dtype() == DType.BF16 && sd == 1) {
            Bf16Lanes.narrowRow(MemorySegment.ofArray(row), 0, buf.seg(), base, dh);
        } else {
            for (int d = 0; d < dh; d++) buf.set(base + d * sd, row[d]);
        }
    }

    /** Writes (or, with {@code add}, adds onto the tensor) rows src[r·dhp + d] as the pair's rows [r0, r0 + rows). */
    private static void storeRows(Tensor x, int bi, int hi, int r0, int rows, int dh, int dhp, float[] src, float[] row, boolean add) {
        Buf buf = Buf.of(x);
        for (int r = 0; r < rows; r++) {
            long base = offset(x, bi, hi, r0 + r);
            if (add) {
                readRow(buf, x, base, dh, row);
                for (int d = 0; d < dh; d++) row[d] += src[r * dhp + d];
            } else {
                System.arraycopy(src, r * dhp, row, 0, dh);
            }
            writeRow(buf, x, base, dh, row);
        }
    }

    private static void accumulateRows(Tensor x, int bi, int hi, int r0, int rows, int dh, int dhp, float[] src, float[] row) {
        storeRows(x, bi, hi, r0, rows, dh, dhp, src, row, true);
    }
}
