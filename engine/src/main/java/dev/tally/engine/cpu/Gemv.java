package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.tally.engine.cpu.Gemm.KC;
import static dev.tally.engine.cpu.Gemm.L;
import static dev.tally.engine.cpu.Gemm.NR;
import static dev.tally.engine.cpu.Gemm.S;

/**
 * Vector × matrix products, the matmuls with one output row or one output column (a [1, K] mask times a [K, V] tile in
 * Cut Cross-Entropy): y[j] = alpha·Σ_p v[p]·M[p, j] + beta·y[j]. The blocked {@link Gemm} would pack all of M to use
 * each element once, and pad the single row to a full micro-tile; here M is read in place.
 *
 * <p>The arithmetic is the blocked GEMM's, element for element: each output is a fused multiply-add chain over k in
 * order within each {@link Gemm#KC} block, from zero, and the blocks are added into y in order exactly as
 * {@code Gemm.store} does. A row of a product therefore has the same bits whichever path computed it.
 */
final class Gemv {
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    /** Columns per vectorized chunk: four independent accumulator chains keep the FMA units busy. */
    private static final int CHUNK = 4 * L;

    private Gemv() {}

    /**
     * The vector {@code v} (element p at {@code v.offset + p·v.cs}; its rs is ignored), the matrix {@code m} (element
     * (p, j) at {@code offset + p·rs + j·cs}) and the F32 output y (element j at {@code y.offset + j·y.ld}), for output
     * columns [j0, j1). beta = 0 ignores y's old contents (NaNs included). Single-threaded.
     */
    static void run(Gemm.Operand v, Gemm.Operand m, Gemm.Dest y, int j0, int j1, int k, float alpha, float beta, Gemm.Scratch s) {
        float[] acc = s.tile, x = s.a; // the thread's GEMM scratch: CHUNK and KC floats fit
        for (int pc = 0; pc < k; pc += KC) {
            int kc = Math.min(KC, k - pc);
            for (int p = 0; p < kc; p++) x[p] = v.get(0, pc + p);
            boolean first = pc == 0;
            float b = first ? beta : 1f;
            for (int jj = j0; jj < j1; jj += CHUNK) {
                int w = Math.min(CHUNK, j1 - jj);
                blockSums(x, m, pc, kc, jj, w, acc, s.b);
                for (int q = 0; q < w; q++) {
                    long at = y.offset() + (jj + q) * y.ld();
                    float sum = alpha * acc[q];
                    if (!first || beta != 0f) {
                        float old = y.seg().getAtIndex(Buf.F, at);
                        sum = first ? old * b + sum : old + sum;
                    }
                    y.seg().setAtIndex(Buf.F, at, sum);
                }
            }
        }
    }

    /**
     * acc[q] = Σ_{p < kc} x[p]·M[pc + p, jj + q] for q < w, each a fused multiply-add chain in p order from zero. A
     * transposed F32 matrix (C ᵀ in CCE's average logit: each output a row of C) is first packed as the blocked GEMM
     * packs B — columns side by side — into {@code panels}, so its chains run in vector lanes too.
     */
    private static void blockSums(float[] x, Gemm.Operand m, int pc, int kc, int jj, int w, float[] acc, float[] panels) {
        MemorySegment seg = m.buf().seg();
        int q = 0;
        if (m.buf().dt() == DType.F32 && m.cs() != 1) {
            GemmPacking.packB(m, pc, kc, jj, w, panels); // NR-wide panels, each kc × NR row-major, zero past w
            float[] lanes = new float[L];
            for (int jr = 0; jr < w; jr += NR) {
                int base = jr * kc;
                for (int v = 0; v < NR && jr + v < w; v += L) {
                    FloatVector sum = FloatVector.zero(S);
                    for (int p = 0; p < kc; p++) sum = FloatVector.broadcast(S, x[p]).fma(FloatVector.fromArray(S, panels, base + p * NR + v), sum);
                    sum.intoArray(lanes, 0);
                    System.arraycopy(lanes, 0, acc, jr + v, Math.min(L, w - jr - v));
                }
            }
            return;
        }
        if (m.buf().dt() == DType.F32 && m.cs() == 1) {
            long origin = m.offset() + (long) pc * m.rs() + jj;
            if (w == CHUNK) {
                FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S), s3 = FloatVector.zero(S);
                for (int p = 0; p < kc; p++) {
                    long row = (origin + p * m.rs()) * 4;
                    FloatVector xp = FloatVector.broadcast(S, x[p]);
                    s0 = xp.fma(FloatVector.fromMemorySegment(S, seg, row, NATIVE), s0);
                    s1 = xp.fma(FloatVector.fromMemorySegment(S, seg, row + 4L * L, NATIVE), s1);
                    s2 = xp.fma(FloatVector.fromMemorySegment(S, seg, row + 8L * L, NATIVE), s2);
                    s3 = xp.fma(FloatVector.fromMemorySegment(S, seg, row + 12L * L, NATIVE), s3);
                }
                s0.intoArray(acc, 0);
                s1.intoArray(acc, L);
                s2.intoArray(acc, 2 * L);
                s3.intoArray(acc, 3 * L);
                return;
            }
            for (; q + L <= w; q += L) {
                FloatVector s0 = FloatVector.zero(S);
                for (int p = 0; p < kc; p++) {
                    s0 = FloatVector.broadcast(S, x[p]).fma(FloatVector.fromMemorySegment(S, seg, (origin + p * m.rs() + q) * 4, NATIVE), s0);
                }
                s0.intoArray(acc, q);
            }
        }
        // the rest one column at a time (Math.fma rounds once, as the vector lanes do), four columns interleaved
        for (; q + 4 <= w; q += 4) {
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
            long col = m.offset() + (long) pc * m.rs() + (long) (jj + q) * m.cs();
            for (int p = 0; p < kc; p++) {
                long at = col + p * m.rs();
                a0 = Math.fma(x[p], m.buf().getF(at), a0);
                a1 = Math.fma(x[p], m.buf().getF(at + m.cs()), a1);
                a2 = Math.fma(x[p], m.buf().getF(at + 2 * m.cs()), a2);
                a3 = Math.fma(x[p], m.buf().getF(at + 3 * m.cs()), a3);
            }
            acc[q] = a0;
            acc[q + 1] = a1;
            acc[q + 2] = a2;
            acc[q + 3] = a3;
        }
        for (; q < w; q++) {
            float a0 = 0f;
            long col = m.offset() + (long) pc * m.rs() + (long) (jj + q) * m.cs();
            for (int p = 0; p < kc; p++) a0 = Math.fma(x[p], m.buf().getF(col + p * m.rs()), a0);
            acc[q] = a0;
        }
    }
}
