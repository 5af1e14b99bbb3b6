package dev.tally.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Blocked single-precision GEMM, C = alpha·A·B + beta·C, in the GotoBLAS/BLIS scheme: B is packed into KC×NR
 * column panels (kept in L1 while a micro-kernel runs), A into MR×KC row panels (a MC×KC block kept in L2), and an
 * MR×NR register-blocked Vector API micro-kernel does the FMAs. {@link GemmPacking} reads any strides and any float
 * dtype, so transposed views and bf16 operands give the same panels. C is F32 with unit column stride (a native or heap
 * segment).
 */
final class Gemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /**
     * Rows of the micro-tile: 8 × 2 vectors (16 accumulators) with AVX-512's 32 registers, 6 × 2 with AVX2's 16 (8 rows
     * would spill). Neither changes a result: each output is the same FMA chain in either tile.
     */
    static final int MR = L >= 16 ? 8 : 6;
    static final int NR = 2 * L;
    static final int KC = 256;
    static final int MC = MR * 16;
    static final int NC = 1024;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private Gemm() {}

    /** A strided matrix operand: element (r, c) at {@code offset + r·rs + c·cs} of {@code buf}. */
    record Operand(Buf buf, long offset, long rs, long cs) {
        float get(long r, long c) {
            return buf.getF(offset + r * rs + c * cs);
        }
    }

    /** The F32 destination: element (i, j) at float index {@code offset + i·ld + j} of {@code seg}. */
    record Dest(MemorySegment seg, long offset, long ld) {}

    /** Per-thread packing buffers and the accumulator tile, allocated once per thread and reused. */
    static final class Scratch {
        final float[] a = new float[MC * KC];
        final float[] b = new float[KC * roundUp(NC, NR)];
        final float[] tile = new float[MR * NR];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static Scratch scratch() { return SCRATCH.get(); }

    static int roundUp(int x, int m) { return (x + m - 1) / m * m; }

    /**
     * Single-threaded C[m, n] = alpha·A[m, k]·B[k, n] + beta·C over column range [j0, j1) and row range [i0, i1).
     * beta = 0 ignores C's old contents (NaNs included).
     */
    static void run(Operand a, Operand b, Dest c, int i0, int i1, int j0, int j1, int k, float alpha, float beta, Scratch s) {
        if (k == 0) {
            scaleOnly(c, i0, i1, j0, j1, beta);
            return;
        }
        for (int jc = j0; jc < j1; jc += NC) {
            int nc = Math.min(NC, j1 - jc);
            for (int pc = 0; pc < k; pc += KC) {
                int kc = Math.min(KC, k - pc);
                GemmPacking.packB(b, pc, kc, jc, nc, s.b);
                boolean first = pc == 0;
                for (int ic = i0; ic < i1; ic += MC) {
                    int mc = Math.min(MC, i1 - ic);
                    GemmPacking.packA(a, ic, mc, pc, kc, s.a);
                    macro(s, c, ic, mc, jc, nc, kc, alpha, first ? beta : 1f, first);
                }
            }
        }
    }

    /**
     * Below this many multiply-adds (of the whole product: decided by shape alone, so a result never depends on thread
     * count or layout) the packing set-up costs more than it saves, and warm-up is faster.
     */
    static final long SMALL = 32 * 32 * 32;

    /** Plain dot-product loops for tiny products; same contract as {@link #run}. */
    static void runSmall(Operand a, Operand b, Dest c, int m, int n, int k, float alpha, float beta) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float acc = 0f;
                for (int p = 0; p < k; p++) acc += a.get(i, p) * b.get(p, j);
                long at = c.offset + i * c.ld + j;
                float v = alpha * acc;
                if (beta != 0f) v += beta * c.seg.getAtIndex(F, at);
                c.seg.setAtIndex(F, at, v);
            }
        }
    }

    /** k = 0: the product is empty, C = beta·C (beta = 0 writes zeros). */
    static void scaleOnly(Dest c, int i0, int i1, int j0, int j1, float beta) {
        for (int i = i0; i < i1; i++) {
            for (int j = j0; j < j1; j++) {
                long at = c.offset + i * c.ld + j;
                c.seg.setAtIndex(F, at, beta == 0f ? 0f : beta * c.seg.getAtIndex(F, at));
            }
        }
    }

    /** All micro-tiles of one packed MC×KC block of A against one packed KC×NC panel of B. */
    private static void macro(Scratch s, Dest c, int ic, int mc, int jc, int nc, int kc, float alpha, float beta, boolean first) {
        for (int jr = 0; jr < nc; jr += NR) {
            int w = Math.min(NR, nc - jr);
            for (int ir = 0; ir < mc; ir += MR) {
                int h = Math.min(MR, mc - ir);
                kernel(s.a, ir * kc, s.b, jr * kc, kc, s.tile);
                store(s.tile, c, ic + ir, h, jc + jr, w, alpha, beta, first);
            }
        }
    }

    /**
     * The MR×NR micro-kernel (MR × 2 vectors of accumulators): every element of the tile is one fused multiply-add chain
     * over k in order, from zero, whatever the tile's position, so the result does not depend on how the product is
     * split into tiles or threads.
     */
    static void kernel(float[] a, int ao, float[] b, int bo, int kc, float[] tile) {
        if (MR == 8) kernel8(a, ao, b, bo, kc, tile);
        else kernel6(a, ao, b, bo, kc, tile);
    }

    private static void kernel8(float[] a, int ao, float[] b, int bo, int kc, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        FloatVector c60 = FloatVector.zero(S), c61 = FloatVector.zero(S);
        FloatVector c70 = FloatVector.zero(S), c71 = FloatVector.zero(S);
        for (int p = 0; p < kc; p++) {
            int bp = bo + p * NR, ap = ao + p * 8;
            FloatVector b0 = FloatVector.fromArray(S, b, bp);
            FloatVector b1 = FloatVector.fromArray(S, b, bp + L);
            FloatVector x0 = FloatVector.broadcast(S, a[ap + 0]);
            c00 = x0.fma(b0, c00);
            c01 = x0.fma(b1, c01);
            FloatVector x1 = FloatVector.broadcast(S, a[ap + 1]);
            c10 = x1.fma(b0, c10);
            c11 = x1.fma(b1, c11);
            FloatVector x2 = FloatVector.broadcast(S, a[ap + 2]);
            c20 = x2.fma(b0, c20);
            c21 = x2.fma(b1, c21);
            FloatVector x3 = FloatVector.broadcast(S, a[ap + 3]);
            c30 = x3.fma(b0, c30);
            c31 = x3.fma(b1, c31);
            FloatVector x4 = FloatVector.broadcast(S, a[ap + 4]);
            c40 = x4.fma(b0, c40);
            c41 = x4.fma(b1, c41);
            FloatVector x5 = FloatVector.broadcast(S, a[ap + 5]);
            c50 = x5.fma(b0, c50);
            c51 = x5.fma(b1, c51);
            FloatVector x6 = FloatVector.broadcast(S, a[ap + 6]);
            c60 = x6.fma(b0, c60);
            c61 = x6.fma(b1, c61);
            FloatVector x7 = FloatVector.broadcast(S, a[ap + 7]);
            c70 = x7.fma(b0, c70);
            c71 = x7.fma(b1, c71);
        }
        c00.intoArray(tile, 0 * NR);
        c01.intoArray(tile, 0 * NR + L);
        c10.intoArray(tile, 1 * NR);
        c11.intoArray(tile, 1 * NR + L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + L);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + L);
        c60.intoArray(tile, 6 * NR);
        c61.intoArray(tile, 6 * NR + L);
        c70.intoArray(tile, 7 * NR);
        c71.intoArray(tile, 7 * NR + L);
    }

    private static void kernel6(float[] a, int ao, float[] b, int bo, int kc, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        for (int p = 0; p < kc; p++) {
            int bp = bo + p * NR, ap = ao + p * 6;
            FloatVector b0 = FloatVector.fromArray(S, b, bp);
            FloatVector b1 = FloatVector.fromArray(S, b, bp + L);
            FloatVector x0 = FloatVector.broadcast(S, a[ap + 0]);
            c00 = x0.fma(b0, c00);
            c01 = x0.fma(b1, c01);
            FloatVector x1 = FloatVector.broadcast(S, a[ap + 1]);
            c10 = x1.fma(b0, c10);
            c11 = x1.fma(b1, c11);
            FloatVector x2 = FloatVector.broadcast(S, a[ap + 2]);
            c20 = x2.fma(b0, c20);
            c21 = x2.fma(b1, c21);
            FloatVector x3 = FloatVector.broadcast(S, a[ap + 3]);
            c30 = x3.fma(b0, c30);
            c31 = x3.fma(b1, c31);
            FloatVector x4 = FloatVector.broadcast(S, a[ap + 4]);
            c40 = x4.fma(b0, c40);
            c41 = x4.fma(b1, c41);
            FloatVector x5 = FloatVector.broadcast(S, a[ap + 5]);
            c50 = x5.fma(b0, c50);
            c51 = x5.fma(b1, c51);
        }
        c00.intoArray(tile, 0 * NR);
        c01.intoArray(tile, 0 * NR + L);
        c10.intoArray(tile, 1 * NR);
        c11.intoArray(tile, 1 * NR + L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + L);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + L);
    }

    /**
     * Adds a finished tile into C: on the first K block C = alpha·tile + beta·C (beta = 0: C's old value is not read),
     * later K blocks C += alpha·tile.
     */
    private static void store(float[] tile, Dest c, int i, int h, int j, int w, float alpha, float beta, boolean first) {
        MemorySegment seg = c.seg;
        boolean readOld = !first || beta != 0f;
        for (int r = 0; r < h; r++) {
            long row = c.offset + (i + r) * c.ld + j;
            int t = r * NR;
            if (w == NR) {
                for (int v = 0; v < NR; v += L) {
                    FloatVector acc = FloatVector.fromArray(S, tile, t + v).mul(alpha);
                    long byteOff = (row + v) * 4;
                    if (readOld) {
                        FloatVector old = FloatVector.fromMemorySegment(S, seg, byteOff, NATIVE);
                        acc = first ? old.mul(beta).add(acc) : old.add(acc);
                    }
                    acc.intoMemorySegment(seg, byteOff, NATIVE);
                }
            } else {
                for (int q = 0; q < w; q++) {
                    float acc = alpha * tile[t + q];
                    if (readOld) {
                        float old = seg.getAtIndex(F, row + q);
                        acc = first ? old * beta + acc : old + acc;
                    }
                    seg.setAtIndex(F, row + q, acc);
                }
            }
        }
    }
}
