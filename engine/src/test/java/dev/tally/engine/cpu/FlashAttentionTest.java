package dev.tally.engine.cpu;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused causal attention op against a float64 reference (scores, causal softmax, weighted sum; gradients by the
 * textbook formulas), on [B, H, T, Dh] views permuted out of [B, T, H·Dh] storage as the model uses them, with T and Dh
 * ragged against the vector length; backward accumulates; META validates the same shapes.
 */
class FlashAttentionTest {
    private int B, H, T, DH;

    /** [B·T, H·Dh] storage viewed as [B, H, T, Dh]. */
    private Tensor heads(Tensor x) { return x.reshape(B, T, H, DH).permute(0, 2, 1, 3); }

    private double at(double[] x, int b, int h, int t, int d) { return x[((b * T + t) * H + h) * DH + d]; }

    /**
     * One block of queries and keys with ragged T and Dh; several blocks (T crosses the 64-row query and key blocks, a
     * partial last block, Dh a multiple of the tile width as in the models).
     */
    @ParameterizedTest(name = "B{0} H{1} T{2} Dh{3}")
    @CsvSource({"2, 3, 37, 20", "1, 2, 133, 64", "2, 1, 200, 24"})
    void forwardAndBackwardMatchFloat64(int batch, int heads, int seq, int dh) {
        B = batch;
        H = heads;
        T = seq;
        DH = dh;
        SeededRandom r = new SeededRandom(17);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        double scale = 1 / Math.sqrt(DH);
        int n = B * T * H * DH;
        double[] q = r.normal(n), k = r.normal(n), v = r.normal(n), dout = r.normal(n), prior = r.normal(n);
        // reference
        double[] out = new double[n], dq = new double[n], dk = new double[n], dv = new double[n], lse = new double[B * H * T];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                double[][] p = new double[T][T];
                for (int i = 0; i < T; i++) {
                    double m = Double.NEGATIVE_INFINITY;
                    double[] s = new double[i + 1];
                    for (int j = 0; j <= i; j++) {
                        for (int d = 0; d < DH; d++) s[j] += at(q, b, h, i, d) * at(k, b, h, j, d);
                        s[j] *= scale;
                        m = Math.max(m, s[j]);
                    }
                    double l = 0;
                    for (int j = 0; j <= i; j++) l += Math.exp(s[j] - m);
                    lse[(b * H + h) * T + i] = m + Math.log(l);
                    for (int j = 0; j <= i; j++) p[i][j] = Math.exp(s[j] - m) / l;
                    for (int d = 0; d < DH; d++) {
                        double o = 0;
                        for (int j = 0; j <= i; j++) o += p[i][j] * at(v, b, h, j, d);
                        out[((b * T + i) * H + h) * DH + d] = o;
                    }
                }
                for (int i = 0; i < T; i++) {
                    double di = 0;
                    for (int d = 0; d < DH; d++) di += at(dout, b, h, i, d) * out[((b * T + i) * H + h) * DH + d];
                    for (int j = 0; j <= i; j++) {
                        double dp = 0;
                        for (int d = 0; d < DH; d++) dp += at(dout, b, h, i, d) * at(v, b, h, j, d);
                        double ds = p[i][j] * (dp - di) * scale;
                        for (int d = 0; d < DH; d++) {
                            dq[((b * T + i) * H + h) * DH + d] += ds * at(k, b, h, j, d);
                            dk[((b * T + j) * H + h) * DH + d] += ds * at(q, b, h, i, d);
                            dv[((b * T + j) * H + h) * DH + d] += p[i][j] * at(dout, b, h, i, d);
                        }
                    }
                }
            }
        }
        try (MemoryArena arena = TestArenas.open(Device.CPU, 8L << 20)) {
            Tensor tq = t(arena, q), tk = t(arena, k), tv = t(arena, v), tg = t(arena, dout);
            Tensor to = arena.allocate("out", DType.F32, B * T, H * DH), tl = arena.allocate("lse", DType.F32, B, H, T);
            ops.causalAttention(heads(tq), heads(tk), heads(tv), scale, heads(to), tl);
            close(out, to.toDoubleArray(), 2e-6, "out");
            close(lse, tl.toDoubleArray(), 2e-6, "lse");
            Tensor gq = t(arena, prior), gk = t(arena, prior), gv = t(arena, prior);
            ops.causalAttentionBackward(heads(tq), heads(tk), heads(tv), heads(to), tl, heads(tg), scale, heads(gq), heads(gk), heads(gv));
            // accumulates: the prior contents plus the gradient
            double[] pq = new double[n], pk = new double[n], pv = new double[n];
            for (int i = 0; i < n; i++) {
                pq[i] = (float) prior[i] + dq[i];
                pk[i] = (float) prior[i] + dk[i];
                pv[i] = (float) prior[i] + dv[i];
            }
            close(pq, gq.toDoubleArray(), 1e-5, "dq");
            close(pk, gk.toDoubleArray(), 1e-5, "dk");
            close(pv, gv.toDoubleArray(), 1e-5, "dv");
            // a null gradient is skipped; the others are the same bits as before (each pair computed the same way)
            Tensor gq2 = t(arena, prior), gv2 = t(arena, prior);
            ops.causalAttentionBackward(heads(tq), heads(tk), heads(tv), heads(to), tl, heads(tg), scale, heads(gq2), null, heads(gv2));
            assertArrayEquals(gq.toFloatArray(), gq2.toFloatArray());
            assertArrayEquals(gv.toFloatArray(), gv2.toFloatArray());
            // META checks the same contract
            Ops meta = dev.tally.engine.Backends.of(Device.META).ops();
            try (MemoryArena m = TestArenas.open(Device.META, 1L << 20)) {
                Tensor mq = m.allocate("q", DType.F32, B, H, T, DH), ml = m.allocate("lse", DType.F32, B, H, T);
                meta.causalAttention(mq, mq, mq, scale, mq, ml);
                Tensor bad = m.allocate("lse", DType.F32, B, H, T + 1);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> meta.causalAttention(mq, mq, mq, scale, mq, bad));
                assertTrue(e.getMessage().contains("lse"), e.getMessage());
            }
        }
    }

    /**
     * bf16 inputs and gradients: rows with a unit Dh stride (as the model's views have) are widened and rounded a vector at
     * a time, other layouts element by element; both give the same bits — forward out and lse, and the accumulated
     * gradients — here against views whose Dh stride is H.
     */
    @org.junit.jupiter.api.Test
    void bf16RowsGiveTheSameBitsInEitherLayout() {
        B = 2;
        H = 3;
        T = 70;
        DH = 24;
        SeededRandom r = new SeededRandom(19);
        Ops ops = dev.tally.engine.Backends.of(Device.CPU).ops();
        double scale = 1 / Math.sqrt(DH);
        int n = B * T * H * DH;
        double[][] values = {r.normal(n), r.normal(n), r.normal(n), r.normal(n), r.normal(n)}; // q k v dout prior, logical order
        try (MemoryArena arena = TestArenas.open(Device.CPU, 8L << 20)) {
            double[][][] results = new double[2][][];
            for (int layout = 0; layout < 2; layout++) {
                Tensor[] in = new Tensor[5];
                for (int i = 0; i < 5; i++) in[i] = bf16View(arena, values[i], layout == 1);
                Tensor out = bf16View(arena, new double[n], layout == 1), lse = arena.allocate("lse", DType.F32, B, H, T);
                Tensor dq = bf16View(arena, values[4], layout == 1), dk = bf16View(arena, values[4], layout == 1);
                ops.causalAttention(in[0], in[1], in[2], scale, out, lse);
                ops.causalAttentionBackward(in[0], in[1], in[2], out, lse, in[3], scale, dq, dk, in[4]);
                results[layout] = new double[][] {out.toDoubleArray(), lse.toDoubleArray(), dq.toDoubleArray(), dk.toDoubleArray(), in[4].toDoubleArray()};
            }
            String[] names = {"out", "lse", "dq", "dk", "dv"};
            for (int i = 0; i < names.length; i++) {
                assertTrue(results[0][i].length > 0 && results[0][i].length == results[1][i].length, names[i]);
                for (int j = 0; j < results[0][i].length; j++) {
                    assertEquals(Double.doubleToRawLongBits(results[1][i][j]), Double.doubleToRawLongBits(results[0][i][j]), names[i] + " at " + j);
                }
            }
        }
    }

    /** A bf16 [B, H, T, Dh] view holding {@code logical} (in that order): Dh stride 1 ([B, T, H, Dh] storage) or H ([B, T, Dh, H]). */
    private Tensor bf16View(MemoryArena arena, double[] logical, boolean strided) {
        double[] stored = new double[logical.length];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                for (int t = 0; t < T; t++) {
                    for (int d = 0; d < DH; d++) {
                        int at = strided ? ((b * T + t) * DH + d) * H + h : ((b * T + t) * H + h) * DH + d;
                        stored[at] = logical[((b * H + h) * T + t) * DH + d];
                    }
                }
            }
        }
        Tensor storage = arena.allocate("x", DType.BF16, B, T, strided ? DH : H, strided ? H : DH).copyFrom(stored);
        Tensor view = strided ? storage.permute(0, 3, 1, 2) : storage.permute(0, 2, 1, 3);
        assertEquals(strided ? H : 1, view.stride(3));
        return view;
    }

    private Tensor t(MemoryArena arena, double[] x) {
        Tensor t = arena.allocate("x", DType.F32, B * T, H * DH);
        float[] f = new float[x.length];
        for (int i = 0; i < f.length; i++) f[i] = (float) x[i];
        return t.copyFrom(f);
    }

    private static void close(double[] want, double[] got, double tol, String what) {
        double scale = 0;
        for (double w : want) scale = Math.max(scale, Math.abs(w));
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tol * Math.max(1, scale), what + " at " + i);
    }
}
