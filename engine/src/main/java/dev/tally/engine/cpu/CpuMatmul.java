package dev.tally.engine.cpu;

import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * fp32 GEMM with a Vector API register-blocked micro-kernel. Operands are first packed into panels (which also absorbs
 * transposed/strided views and bf16/f16 storage): A into MR-row panels, B into NR-column panels, each laid out so the
 * micro-kernel streams them sequentially. Each MR×NR tile of C lives in 2·MR vector registers across the whole k loop.
 * Column panels are spread over the common fork-join pool.
 */
final class CpuMatmul {
    private static final VectorSpecies<Float> SP = FloatVector.SPECIES_PREFERRED;
    private static final int VL = SP.length();
    static final int MR = 4;
    static final int NR = 2 * VL;

    private CpuMatmul() {}

    static void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        int r = out.rank();
        int[] batch = Arrays.copyOf(out.dims(), r - 2);
        Tensor ae = a.expand(Shape.of(concat(batch, a.dim(-2), a.dim(-1))));
        Tensor be = b.expand(Shape.of(concat(batch, b.dim(-2), b.dim(-1))));
        long batches = Shape.of(batch).numel();
        int[] idx = new int[batch.length];
        for (long t = 0; t < batches; t++) {
            Tensor a2 = ae, b2 = be, o2 = out;
            for (int d = 0; d < batch.length; d++) {
                a2 = a2.select(0, idx[d]);
                b2 = b2.select(0, idx[d]);
                o2 = o2.select(0, idx[d]);
            }
            gemm(a2, b2, o2, (float) alpha, (float) beta);
            for (int d = batch.length - 1; d >= 0; d--) {
                if (++idx[d] < batch[d]) break;
                idx[d] = 0;
            }
        }
    }

    private static int[] concat(int[] head, int x, int y) {
        int[] o = Arrays.copyOf(head, head.length + 2);
        o[head.length] = x;
        o[head.length + 1] = y;
        return o;
    }

    /** Benchmark hook: one 2-D product on the calling thread only. */
    static void gemmSingleThread(Tensor a, Tensor b, Tensor out) {
        gemm(a, b, out, 1f, 0f, false);
    }

    static void gemm(Tensor a, Tensor b, Tensor out, float alpha, float beta) {
        gemm(a, b, out, alpha, beta, true);
    }

    /** One 2-D product out[m,n] = alpha·a[m,k]·b[k,n] + beta·out. */
    private static void gemm(Tensor a, Tensor b, Tensor out, float alpha, float beta, boolean parallel) {
        int m = a.dim(0), k = a.dim(1), n = b.dim(1);
        if (m == 0 || n == 0) return;
        int mp = (m + MR - 1) / MR, np = (n + NR - 1) / NR;
        float[] ap = packA(a, m, k, mp);
        float[] bp = packB(b, k, n, np);
        Buf o = new Buf(out);
        long os0 = out.stride(0), os1 = out.stride(1), oo = out.offset();
        IntStream panels = IntStream.range(0, np);
        if (parallel && (long) m * n * k >= 1L << 18) panels = panels.parallel();
        panels.forEach(jp -> {
            float[] tile = new float[MR * NR];
            for (int ip = 0; ip < mp; ip++) {
                kernel(ap, ip * k * MR, bp, jp * k * NR, k, tile);
                int i0 = ip * MR, j0 = jp * NR;
                int ie = Math.min(MR, m - i0), je = Math.min(NR, n - j0);
                for (int i = 0; i < ie; i++) {
                    for (int j = 0; j < je; j++) {
                        long at = oo + (i0 + i) * os0 + (j0 + j) * os1;
                        float v = alpha * tile[i * NR + j];
                        if (beta != 0f) v += beta * o.get(at);
                        o.set(at, v);
                    }
                }
            }
        });
    }

    /** A as MR-row panels: ap[(panel·k + kk)·MR + r] = a[panel·MR + r, kk], zero-padded. */
    private static float[] packA(Tensor a, int m, int k, int mp) {
        float[] ap = new float[mp * k * MR];
        Buf buf = new Buf(a);
        long s0 = a.stride(0), s1 = a.stride(1), off = a.offset();
        for (int i = 0; i < m; i++) {
            int panel = i / MR, r = i % MR;
            int base = panel * k * MR + r;
            long row = off + i * s0;
            for (int kk = 0; kk < k; kk++) ap[base + kk * MR] = buf.get(row + kk * s1);
        }
        return ap;
    }

    /** B as NR-column panels: bp[(panel·k + kk)·NR + c] = b[kk, panel·NR + c], zero-padded. */
    private static float[] packB(Tensor b, int k, int n, int np) {
        float[] bp = new float[np * k * NR];
        Buf buf = new Buf(b);
        long s0 = b.stride(0), s1 = b.stride(1), off = b.offset();
        for (int kk = 0; kk < k; kk++) {
            long row = off + kk * s0;
            for (int j = 0; j < n; j++) {
                bp[(j / NR) * k * NR + kk * NR + (j % NR)] = buf.get(row + j * s1);
            }
        }
        return bp;
    }

    /** Depth of one register-accumulated block: partial sums are added into the tile every KB steps. */
    static final int KB = 128;

    /**
     * tile[MR×NR] = Σ_kk apanel[kk]ᵀ · bpanel[kk]. Two-level summation: registers accumulate KB products, then add into
     * the tile, so rounding error grows with K/KB + KB rather than K (a single long fp32 chain lost ~1e-6 relative on
     * a K = 1000 cross-entropy gradient).
     */
    private static void kernel(float[] ap, int ao, float[] bp, int bo, int k, float[] tile) {
        java.util.Arrays.fill(tile, 0f);
        for (int k0 = 0; k0 < k; k0 += KB) {
            int k1 = Math.min(k, k0 + KB);
            FloatVector c00 = FloatVector.zero(SP), c01 = FloatVector.zero(SP);
            FloatVector c10 = FloatVector.zero(SP), c11 = FloatVector.zero(SP);
            FloatVector c20 = FloatVector.zero(SP), c21 = FloatVector.zero(SP);
            FloatVector c30 = FloatVector.zero(SP), c31 = FloatVector.zero(SP);
            for (int kk = k0; kk < k1; kk++) {
                int bi = bo + kk * NR;
                FloatVector b0 = FloatVector.fromArray(SP, bp, bi);
                FloatVector b1 = FloatVector.fromArray(SP, bp, bi + VL);
                int ai = ao + kk * MR;
                FloatVector a0 = FloatVector.broadcast(SP, ap[ai]);
                c00 = a0.fma(b0, c00);
                c01 = a0.fma(b1, c01);
                FloatVector a1 = FloatVector.broadcast(SP, ap[ai + 1]);
                c10 = a1.fma(b0, c10);
                c11 = a1.fma(b1, c11);
                FloatVector a2 = FloatVector.broadcast(SP, ap[ai + 2]);
                c20 = a2.fma(b0, c20);
                c21 = a2.fma(b1, c21);
                FloatVector a3 = FloatVector.broadcast(SP, ap[ai + 3]);
                c30 = a3.fma(b0, c30);
                c31 = a3.fma(b1, c31);
            }
            addInto(c00, tile, 0);
            addInto(c01, tile, VL);
            addInto(c10, tile, NR);
            addInto(c11, tile, NR + VL);
            addInto(c20, tile, 2 * NR);
            addInto(c21, tile, 2 * NR + VL);
            addInto(c30, tile, 3 * NR);
            addInto(c31, tile, 3 * NR + VL);
        }
    }

    private static void addInto(FloatVector acc, float[] tile, int at) {
        FloatVector.fromArray(SP, tile, at).add(acc).intoArray(tile, at);
    }
}
