package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Blocked single-precision GEMM, C = alpha·A·B + beta·C, in the GotoBLAS/BLIS scheme: B is packed into KC×NR
 * column panels (kept in L1 while a micro-kernel runs), A into MR×KC row panels (a MC×KC block kept in L2), and an
 * MR×NR register-blocked Vector API micro-kernel does the FMAs. Packing reads any strides and any float dtype, so
 * transposed views and bf16 operands cost nothing extra. C is F32 with unit column stride (a native or heap segment).
 */
final class Gemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    static final int MR = 6;
    static final int NR = 2 * L;
    static final int KC = 256;
    static final int MC = 120;
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
                packB(b, pc, kc, jc, nc, s.b);
                boolean first = pc == 0;
                for (int ic = i0; ic < i1; ic += MC) {
                    int mc = Math.min(MC, i1 - ic);
                    packA(a, ic, mc, pc, kc, s.a);
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

    /** B[pc:pc+kc, jc:jc+nc] into NR-wide column panels, each kc×NR row-major, zero-padded past nc. */
    static void packB(Operand b, int pc, int kc, int jc, int nc, float[] dst) {
        boolean f32Rows = b.buf.dt() == DType.F32 && b.cs == 1;
        MemorySegment seg = b.buf.seg();
        if (b.buf.dt() == DType.F32 && b.rs == 1 && b.cs != 1) {
            packTransposedB(seg, b, pc, kc, jc, nc, dst);
            return;
        }
        for (int jr = 0; jr < nc; jr += NR) {
            int w = Math.min(NR, nc - jr);
            int base = jr * kc;
            for (int p = 0; p < kc; p++) {
                int d = base + p * NR;
                long row = b.offset + (pc + p) * b.rs + (long) (jc + jr) * b.cs;
                if (f32Rows && w == NR) {
                    FloatVector.fromMemorySegment(S, seg, row * 4, NATIVE).intoArray(dst, d);
                    FloatVector.fromMemorySegment(S, seg, (row + L) * 4, NATIVE).intoArray(dst, d + L);
                } else {
                    for (int j = 0; j < w; j++) dst[d + j] = b.buf.getF(row + j * b.cs);
                    for (int j = w; j < NR; j++) dst[d + j] = 0f;
                }
            }
        }
    }

    /**
     * packB for a transposed F32 view (x @ Wᵀ: every forward linear and the loss head): each panel column is a contiguous
     * run of W's row, so it is read sequentially into the L1-resident panel instead of element by element through the
     * dtype-generic accessor (the profile had the head's and CCE's NT products well below the NN ones). Same values, same
     * panel, so the product's bits do not change.
     */
    private static void packTransposedB(MemorySegment seg, Operand b, int pc, int kc, int jc, int nc, float[] dst) {
        for (int jr = 0; jr < nc; jr += NR) {
            int w = Math.min(NR, nc - jr);
            int base = jr * kc;
            for (int j = 0; j < w; j++) {
                long col = b.offset + pc + (long) (jc + jr + j) * b.cs;
                for (int p = 0; p < kc; p++) dst[base + p * NR + j] = seg.getAtIndex(F, col + p);
            }
            for (int j = w; j < NR; j++) {
                for (int p = 0; p < kc; p++) dst[base + p * NR + j] = 0f;
            }
        }
    }

    /** A[ic:ic+mc, pc:pc+kc] into MR-tall row panels, each kc×MR (MR values per k step), zero-padded past mc. */
    static void packA(Operand a, int ic, int mc, int pc, int kc, float[] dst) {
        boolean f32 = a.buf.dt() == DType.F32;
        MemorySegment seg = a.buf.seg();
        for (int ir = 0; ir < mc; ir += MR) {
            int h = Math.min(MR, mc - ir);
            int base = ir * kc;
            for (int r = 0; r < MR; r++) {
                if (r >= h) {
                    for (int p = 0; p < kc; p++) dst[base + p * MR + r] = 0f;
                    continue;
                }
                long row = a.offset + (ic + ir + r) * a.rs + (long) pc * a.cs;
                if (f32) {
                    for (int p = 0; p < kc; p++) dst[base + p * MR + r] = seg.getAtIndex(F, row + p * a.cs);
                } else {
                    for (int p = 0; p < kc; p++) dst[base + p * MR + r] = a.buf.getF(row + p * a.cs);
                }
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
     * The MR×NR micro-kernel (6 × 2 vectors), k unrolled by 1.
     */
    static void kernel(float[] a, int ao, float[] b, int bo, int kc, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        int p = 0;
        for (; p + 1 <= kc; p += 1) {
            {
                int bp = bo + (p + 0) * NR, ap = ao + (p + 0) * MR;
                FloatVector b0 = FloatVector.fromArray(S, b, bp + 0 * L);
                FloatVector b1 = FloatVector.fromArray(S, b, bp + 1 * L);
                FloatVector x = FloatVector.broadcast(S, a[ap + 0]);
                c00 = x.fma(b0, c00);
                c01 = x.fma(b1, c01);
                x = FloatVector.broadcast(S, a[ap + 1]);
                c10 = x.fma(b0, c10);
                c11 = x.fma(b1, c11);
                x = FloatVector.broadcast(S, a[ap + 2]);
                c20 = x.fma(b0, c20);
                c21 = x.fma(b1, c21);
                x = FloatVector.broadcast(S, a[ap + 3]);
                c30 = x.fma(b0, c30);
                c31 = x.fma(b1, c31);
                x = FloatVector.broadcast(S, a[ap + 4]);
                c40 = x.fma(b0, c40);
                c41 = x.fma(b1, c41);
                x = FloatVector.broadcast(S, a[ap + 5]);
                c50 = x.fma(b0, c50);
                c51 = x.fma(b1, c51);
            }
        }
        c00.intoArray(tile, 0 * NR + 0 * L);
        c01.intoArray(tile, 0 * NR + 1 * L);
        c10.intoArray(tile, 1 * NR + 0 * L);
        c11.intoArray(tile, 1 * NR + 1 * L);
        c20.intoArray(tile, 2 * NR + 0 * L);
        c21.intoArray(tile, 2 * NR + 1 * L);
        c30.intoArray(tile, 3 * NR + 0 * L);
        c31.intoArray(tile, 3 * NR + 1 * L);
        c40.intoArray(tile, 4 * NR + 0 * L);
        c41.intoArray(tile, 4 * NR + 1 * L);
        c50.intoArray(tile, 5 * NR + 0 * L);
        c51.intoArray(tile, 5 * NR + 1 * L);
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
