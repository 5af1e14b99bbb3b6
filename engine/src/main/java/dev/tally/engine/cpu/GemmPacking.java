package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.tally.engine.cpu.Gemm.KC;
import static dev.tally.engine.cpu.Gemm.L;
import static dev.tally.engine.cpu.Gemm.MR;
import static dev.tally.engine.cpu.Gemm.NR;
import static dev.tally.engine.cpu.Gemm.S;

/**
 * Copies GEMM operand blocks into the micro-kernel's panel layouts: A as MR-row panels (MR values per k step), B as
 * NR-column panels (NR values per k step). Packing only moves bits, so every path here gives the same panel and the
 * product never depends on an operand's layout; the paths differ in speed only.
 *
 * <p>In a training step most operands reach the GEMM in the layout that needs a transpose to pack: A row-major (every
 * forward linear, dE of the head) wants MR rows interleaved per k step, and B a transposed view (x·Wᵀ, the logits) wants
 * NR rows of W interleaved. Element-by-element copies cost as much as a third of the FMAs at K = 256 and N = 256, and the
 * element loop over a transposed A (dW = dyᵀ·x, dC of the head) walked a column per row of the panel: 3 ns an element.
 * With 16-lane vectors (AVX-512) those layouts are transposed in registers instead (two-vector shuffles, 8 rows × 16 k
 * per block); other vector widths, dtypes and the ragged edges take the element loops. bf16 operands take the same
 * vector paths, each load widening L values (a bf16 value is the top half of its fp32 bits, so the widening is exact
 * and the panel holds the values the element loop's {@link Buf#getF} would write).
 */
final class GemmPacking {
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    /** The register transposes below are written for 16 lanes and 8-row panels. */
    private static final boolean WIDE = L == 16 && MR == 8;
    /** zip(a, b) low and high halves: lanes a0 b0 a1 b1 … and a8 b8 a9 b9 … (negative indexes select from b). */
    private static final VectorShuffle<Float> ZIP_LO, ZIP_HI;
    /** The low (high) 8 lanes of a followed by the low (high) 8 lanes of b. */
    private static final VectorShuffle<Float> HALVES_LO, HALVES_HI;
    private static final VectorMask<Float> LOW8, HIGH8;

    static {
        int[] zl = new int[L], zh = new int[L], hl = new int[L], hh = new int[L];
        boolean[] low = new boolean[L], high = new boolean[L];
        int h = L / 2;
        for (int i = 0; i < h; i++) {
            zl[2 * i] = i;
            zl[2 * i + 1] = i - L;
            zh[2 * i] = i + h;
            zh[2 * i + 1] = i + h - L;
            hl[i] = i;
            hl[i + h] = i - L;
            hh[i] = i + h;
            hh[i + h] = i + h - L;
            low[i] = true;
            high[i + h] = true;
        }
        ZIP_LO = VectorShuffle.fromArray(S, zl, 0);
        ZIP_HI = VectorShuffle.fromArray(S, zh, 0);
        HALVES_LO = VectorShuffle.fromArray(S, hl, 0);
        HALVES_HI = VectorShuffle.fromArray(S, hh, 0);
        LOW8 = VectorMask.fromArray(S, low, 0);
        HIGH8 = VectorMask.fromArray(S, high, 0);
    }

    private GemmPacking() {}

    /** A[ic:ic+mc, pc:pc+kc] into MR-tall row panels, each kc×MR (MR values per k step), zero-padded past mc. */
    static void packA(Gemm.Operand a, int ic, int mc, int pc, int kc, float[] dst) {
        boolean f32 = a.buf().dt() == DType.F32, vec = f32 || a.buf().dt() == DType.BF16;
        MemorySegment seg = a.buf().seg();
        int ir0 = 0;
        if (WIDE && vec && a.rs() == 1 && a.cs() != 1) ir0 = packTransposedPairs(a, ic, mc, pc, kc, dst, !f32);
        for (int ir = ir0; ir < mc; ir += MR) {
            int h = Math.min(MR, mc - ir), base = ir * kc;
            long origin = a.offset() + (ic + ir) * a.rs() + (long) pc * a.cs();
            int p0 = 0;
            if (WIDE && vec && h == MR && a.cs() == 1) {
                // row-major A: 8 rows × 16 k at a time, transposed in registers into the panel
                for (; p0 + L <= kc; p0 += L) transpose8(seg, !f32, origin + p0, a.rs(), dst, base + p0 * MR, MR);
            }
            packAElements(a, f32, origin, h, p0, kc, dst, base);
        }
    }

    /**
     * Transposed A (dW = dyᵀ·x, the head's dC): the block's rows are contiguous at every k. Two full panels (16 rows) at
     * a time, two k steps of 8 rows making one vector of each; k outermost, so each k step's run of the source (one
     * row of the stored matrix, often a DRAM stream) is read front to back. Returns the rows packed (a multiple of 16).
     */
    private static int packTransposedPairs(Gemm.Operand a, int ic, int mc, int pc, int kc, float[] dst, boolean bf16) {
        MemorySegment seg = a.buf().seg();
        int rows = mc / (2 * MR) * (2 * MR), panel = MR * kc;
        int p0 = 0;
        for (; p0 + 2 <= kc; p0 += 2) {
            long at = a.offset() + (long) (pc + p0) * a.cs() + ic;
            for (int ir = 0; ir < rows; ir += 2 * MR) {
                FloatVector x = load(seg, bf16, at + ir);
                FloatVector y = load(seg, bf16, at + a.cs() + ir);
                int d = ir * kc + p0 * MR;
                x.rearrange(HALVES_LO, y).intoArray(dst, d);
                x.rearrange(HALVES_HI, y).intoArray(dst, d + panel);
            }
        }
        if (p0 < kc) { // an odd k: its last step one element at a time
            for (int ir = 0; ir < rows; ir += MR) {
                packAElements(a, !bf16, a.offset() + (long) (ic + ir) + (long) pc * a.cs(), MR, p0, kc, dst, ir * kc);
            }
        }
        return rows;
    }

    /** k steps [p0, kc) of one panel of h valid rows (the rest zero) starting at element {@code origin}, one by one. */
    private static void packAElements(Gemm.Operand a, boolean f32, long origin, int h, int p0, int kc, float[] dst, int base) {
        MemorySegment seg = a.buf().seg();
        for (int p = p0; p < kc; p++) {
            int d = base + p * MR;
            long at = origin + p * a.cs();
            for (int r = 0; r < h; r++) dst[d + r] = f32 ? seg.getAtIndex(Buf.F, at + r * a.rs()) : a.buf().getF(at + r * a.rs());
            for (int r = h; r < MR; r++) dst[d + r] = 0f;
        }
    }

    /** B[pc:pc+kc, jc:jc+nc] into NR-wide column panels, each kc×NR row-major, zero-padded past nc. */
    static void packB(Gemm.Operand b, int pc, int kc, int jc, int nc, float[] dst) {
        boolean f32 = b.buf().dt() == DType.F32, vec = f32 || b.buf().dt() == DType.BF16;
        MemorySegment seg = b.buf().seg();
        for (int jr = 0; jr < nc; jr += NR) {
            int w = Math.min(NR, nc - jr), base = jr * kc;
            long origin = b.offset() + (long) pc * b.rs() + (long) (jc + jr) * b.cs();
            int p0 = 0;
            if (vec && w == NR && b.cs() == 1) {
                // row-major B: each k step of the panel is NR contiguous values
                for (; p0 < kc; p0++) {
                    long row = origin + p0 * b.rs();
                    int d = base + p0 * NR;
                    for (int v = 0; v < NR; v += L) load(seg, !f32, row + v).intoArray(dst, d + v);
                }
            } else if (WIDE && vec && w == NR && b.rs() == 1) {
                // transposed B (x·Wᵀ): W's rows are the panel's columns; 8 of them × 16 k at a time through registers
                for (; p0 + L <= kc; p0 += L) {
                    for (int j = 0; j < NR; j += MR) transpose8(seg, !f32, origin + p0 + j * b.cs(), b.cs(), dst, base + p0 * NR + j, NR);
                }
            }
            for (int p = p0; p < kc; p++) {
                int d = base + p * NR;
                long row = origin + p * b.rs();
                for (int j = 0; j < w; j++) dst[d + j] = f32 ? seg.getAtIndex(Buf.F, row + j * b.cs()) : b.buf().getF(row + j * b.cs());
                for (int j = w; j < NR; j++) dst[d + j] = 0f;
            }
        }
    }

    /**
     * Eight rows of 16 floats (row r at {@code src + r·ld}) transposed: the 8 values of column q go to
     * {@code dst[d0 + q·stride …+8]}. Three rounds of zips turn the 8 × 16 block into 8 vectors that each hold two
     * columns. Written out in full: a helper taking or returning a vector would box it wherever C2 does not inline.
     */
    private static void transpose8(MemorySegment seg, boolean bf16, long src, long ld, float[] dst, int d0, int stride) {
        FloatVector r0 = load(seg, bf16, src + 0 * ld);
        FloatVector r1 = load(seg, bf16, src + 1 * ld);
        FloatVector r2 = load(seg, bf16, src + 2 * ld);
        FloatVector r3 = load(seg, bf16, src + 3 * ld);
        FloatVector r4 = load(seg, bf16, src + 4 * ld);
        FloatVector r5 = load(seg, bf16, src + 5 * ld);
        FloatVector r6 = load(seg, bf16, src + 6 * ld);
        FloatVector r7 = load(seg, bf16, src + 7 * ld);
        // round 1 zips rows (r, r + 4), round 2 the results (s, s + 4), round 3 again: vector q then holds columns 2q, 2q + 1
        FloatVector a0 = r0.rearrange(ZIP_LO, r4), a1 = r0.rearrange(ZIP_HI, r4), a2 = r1.rearrange(ZIP_LO, r5), a3 = r1.rearrange(ZIP_HI, r5);
        FloatVector a4 = r2.rearrange(ZIP_LO, r6), a5 = r2.rearrange(ZIP_HI, r6), a6 = r3.rearrange(ZIP_LO, r7), a7 = r3.rearrange(ZIP_HI, r7);
        FloatVector b0 = a0.rearrange(ZIP_LO, a4), b1 = a0.rearrange(ZIP_HI, a4), b2 = a1.rearrange(ZIP_LO, a5), b3 = a1.rearrange(ZIP_HI, a5);
        FloatVector b4 = a2.rearrange(ZIP_LO, a6), b5 = a2.rearrange(ZIP_HI, a6), b6 = a3.rearrange(ZIP_LO, a7), b7 = a3.rearrange(ZIP_HI, a7);
        FloatVector c0 = b0.rearrange(ZIP_LO, b4), c1 = b0.rearrange(ZIP_HI, b4), c2 = b1.rearrange(ZIP_LO, b5), c3 = b1.rearrange(ZIP_HI, b5);
        FloatVector c4 = b2.rearrange(ZIP_LO, b6), c5 = b2.rearrange(ZIP_HI, b6), c6 = b3.rearrange(ZIP_LO, b7), c7 = b3.rearrange(ZIP_HI, b7);
        if (stride == 8) {
            c0.intoArray(dst, d0 + 0 * 8);
            c1.intoArray(dst, d0 + 2 * 8);
            c2.intoArray(dst, d0 + 4 * 8);
            c3.intoArray(dst, d0 + 6 * 8);
            c4.intoArray(dst, d0 + 8 * 8);
            c5.intoArray(dst, d0 + 10 * 8);
            c6.intoArray(dst, d0 + 12 * 8);
            c7.intoArray(dst, d0 + 14 * 8);
        } else {
            c0.intoArray(dst, d0 + 0 * stride, LOW8);
            c0.intoArray(dst, d0 + 1 * stride - 8, HIGH8);
            c1.intoArray(dst, d0 + 2 * stride, LOW8);
            c1.intoArray(dst, d0 + 3 * stride - 8, HIGH8);
            c2.intoArray(dst, d0 + 4 * stride, LOW8);
            c2.intoArray(dst, d0 + 5 * stride - 8, HIGH8);
            c3.intoArray(dst, d0 + 6 * stride, LOW8);
            c3.intoArray(dst, d0 + 7 * stride - 8, HIGH8);
            c4.intoArray(dst, d0 + 8 * stride, LOW8);
            c4.intoArray(dst, d0 + 9 * stride - 8, HIGH8);
            c5.intoArray(dst, d0 + 10 * stride, LOW8);
            c5.intoArray(dst, d0 + 11 * stride - 8, HIGH8);
            c6.intoArray(dst, d0 + 12 * stride, LOW8);
            c6.intoArray(dst, d0 + 13 * stride - 8, HIGH8);
            c7.intoArray(dst, d0 + 14 * stride, LOW8);
            c7.intoArray(dst, d0 + 15 * stride - 8, HIGH8);
        }
    }

    /** L values from element {@code at}: fp32 as they are, bf16 widened ({@link Bf16Lanes#widen}). */
    private static FloatVector load(MemorySegment seg, boolean bf16, long at) {
        return bf16 ? Bf16Lanes.widen(seg, at) : FloatVector.fromMemorySegment(S, seg, at * 4, NATIVE);
    }
}
