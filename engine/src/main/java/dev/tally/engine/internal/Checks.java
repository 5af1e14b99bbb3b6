package dev.tally.engine.internal;

import dev.tally.engine.*;

/**
 * Argument validation shared by every backend, so META, CPU and CUDA reject the same calls with the same messages.
 * Messages name the op, the shapes and the tensors' labels.
 */
public final class Checks {
    private Checks() {}

    private static String d(Tensor t) { return t.shape() + " (" + t.label() + ", " + t.dtype() + ")"; }

    public static void sameDevice(String op, Device device, Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null && !t.device().equals(device)) {
                throw new IllegalArgumentException(op + ": tensor " + d(t) + " is on " + t.device() + ", expected " + device);
            }
        }
    }

    public static void floating(String op, Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null && !t.dtype().isFloating()) {
                throw new IllegalArgumentException(op + ": expected a floating dtype, got " + d(t));
            }
        }
    }

    public static void integral(String op, Tensor t) {
        if (t.dtype() != DType.I32 && t.dtype() != DType.I64) {
            throw new IllegalArgumentException(op + ": expected I32 or I64 indices, got " + d(t));
        }
    }

    public static void sameShape(String op, Tensor a, Tensor b) {
        if (!a.shape().equals(b.shape())) {
            throw new IllegalArgumentException(op + ": shape " + d(a) + " does not match " + d(b));
        }
    }

    /** numpy broadcast of two shapes, or an error naming both. */
    public static Shape broadcast(String op, Shape a, Shape b) {
        int r = Math.max(a.rank(), b.rank());
        int[] out = new int[r];
        for (int i = 0; i < r; i++) {
            int da = i - (r - a.rank()) >= 0 ? a.dims()[i - (r - a.rank())] : 1;
            int db = i - (r - b.rank()) >= 0 ? b.dims()[i - (r - b.rank())] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException(op + ": shapes " + a + " and " + b + " do not broadcast");
            }
            out[i] = da == 1 ? db : da;
        }
        return Shape.of(out);
    }

    public static void broadcastsTo(String op, Tensor x, Tensor out) {
        Shape b = broadcast(op, x.shape(), out.shape());
        if (!b.equals(out.shape())) {
            throw new IllegalArgumentException(op + ": " + d(x) + " does not broadcast to output " + d(out));
        }
    }

    public static void copy(Device dev, Tensor src, Tensor dst) {
        sameDevice("copy", dev, src, dst);
        broadcastsTo("copy", src, dst);
    }

    public static void unary(Device dev, UnaryOp op, Tensor x, Tensor out) {
        String n = "unary " + op;
        sameDevice(n, dev, x, out);
        sameShape(n, x, out);
        floating(n, out);
    }

    public static void unaryBackward(Device dev, UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        String n = "unaryBackward " + op;
        sameDevice(n, dev, x, dy, dx);
        sameShape(n, x, dy);
        sameShape(n, x, dx);
        floating(n, x, dy, dx);
    }

    public static void binary(Device dev, BinaryOp op, Tensor a, Tensor b, Tensor out) {
        String n = "binary " + op;
        sameDevice(n, dev, a, b, out);
        Shape s = broadcast(n, a.shape(), b.shape());
        if (!s.equals(out.shape())) {
            throw new IllegalArgumentException(n + ": output " + d(out) + " should have the broadcast shape " + s
                    + " of " + d(a) + " and " + d(b));
        }
    }

    public static void binaryScalar(Device dev, BinaryOp op, Tensor a, Tensor out) {
        String n = "binaryScalar " + op;
        sameDevice(n, dev, a, out);
        sameShape(n, a, out);
    }

    public static void axpby(Device dev, Tensor x, Tensor y, Tensor out) {
        sameDevice("axpby", dev, x, y, out);
        broadcastsTo("axpby", x, out);
        broadcastsTo("axpby", y, out);
        floating("axpby", out);
    }

    public static void adamStep(Device dev, Tensor w, Tensor g, Tensor m, Tensor v, Tensor scratch) {
        sameDevice("adamStep", dev, w, g, m, v, scratch);
        sameShape("adamStep (weight, gradient)", w, g);
        sameShape("adamStep (weight, exp_avg)", w, m);
        sameShape("adamStep (weight, exp_avg_sq)", w, v);
        sameShape("adamStep (weight, scratch)", w, scratch);
        floating("adamStep", w, g, m, v, scratch);
    }

    public static void where(Device dev, Tensor cond, Tensor a, Tensor b, Tensor out) {
        sameDevice("where", dev, cond, a, b, out);
        broadcastsTo("where", cond, out);
        broadcastsTo("where", a, out);
        broadcastsTo("where", b, out);
    }

    public static void reduce(Device dev, ReduceOp op, Tensor x, int dim, Tensor out) {
        String n = "reduce " + op;
        sameDevice(n, dev, x, out);
        int di = x.shape().normalize(dim);
        int[] expect = x.shape().toArray();
        expect[di] = 1;
        if (!out.shape().equals(Shape.of(expect))) {
            throw new IllegalArgumentException(n + " along dim " + dim + " of " + d(x) + ": output should be "
                    + Shape.of(expect) + ", got " + d(out));
        }
        floating(n, out);
    }

    public static void reduceAll(Device dev, ReduceOp op, Tensor x, Tensor out) {
        String n = "reduceAll " + op;
        sameDevice(n, dev, x, out);
        if (out.numel() != 1) throw new IllegalArgumentException(n + ": output must have one element, got " + d(out));
        floating(n, out);
    }

    public static void softmax(Device dev, String op, Tensor x, Tensor out, boolean causal) {
        sameDevice(op, dev, x, out);
        sameShape(op, x, out);
        floating(op, x, out);
        if (x.rank() < 1) throw new IllegalArgumentException(op + ": needs rank >= 1, got " + d(x));
        if (causal && x.rank() < 2) throw new IllegalArgumentException(op + " (causal): needs rank >= 2, got " + d(x));
    }

    /** q, k, v, out [B, H, T, Dh] of one shape; lse F32 [B, H, T]. */
    public static void causalAttention(Device dev, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        sameDevice("causalAttention", dev, q, k, v, out, lse);
        if (q.rank() != 4) throw new IllegalArgumentException("causalAttention: q " + d(q) + " should be [B, H, T, Dh]");
        sameShape("causalAttention", q, k);
        sameShape("causalAttention", q, v);
        sameShape("causalAttention", q, out);
        if (lse.dtype() != DType.F32 || lse.rank() != 3 || lse.dim(0) != q.dim(0) || lse.dim(1) != q.dim(1) || lse.dim(2) != q.dim(2)) {
            throw new IllegalArgumentException("causalAttention: lse " + d(lse) + " should be F32 [" + q.dim(0) + ", " + q.dim(1)
                    + ", " + q.dim(2) + "] for q " + d(q));
        }
    }

    public static void causalAttentionBackward(Device dev, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout,
                                               Tensor dq, Tensor dk, Tensor dv) {
        causalAttention(dev, q, k, v, out, lse);
        sameDevice("causalAttentionBackward", dev, dout);
        sameShape("causalAttentionBackward", q, dout);
        for (Tensor g : new Tensor[] {dq, dk, dv}) {
            if (g != null) {
                sameDevice("causalAttentionBackward", dev, g);
                sameShape("causalAttentionBackward", q, g);
            }
        }
    }

    public static void softmaxBackward(Device dev, Tensor y, Tensor dy, Tensor dx) {
        sameDevice("softmaxBackward", dev, y, dy, dx);
        sameShape("softmaxBackward", y, dy);
        sameShape("softmaxBackward", y, dx);
    }

    /** logits and out [N, C] of one shape (floating), targets I32/I64 [N], lse and rowScale one value per row ([N] or [N, 1]). */
    public static void softmaxCrossEntropyGrad(Device dev, Tensor logits, Tensor lse, Tensor targets, Tensor rowScale, Tensor out) {
        String op = "softmaxCrossEntropyGrad";
        sameDevice(op, dev, logits, lse, targets, rowScale, out);
        if (logits.rank() != 2) throw new IllegalArgumentException(op + ": logits " + d(logits) + " should be [N, C]");
        sameShape(op, logits, out);
        floating(op, logits, lse, rowScale, out);
        integral(op, targets);
        int n = logits.dim(0);
        if (targets.rank() != 1 || targets.dim(0) != n) {
            throw new IllegalArgumentException(op + ": targets " + d(targets) + " should be [" + n + "] for logits " + d(logits));
        }
        for (Tensor perRow : new Tensor[] {lse, rowScale}) {
            boolean column = perRow.rank() == 1 || (perRow.rank() == 2 && perRow.dim(1) == 1);
            if (!column || perRow.dim(0) != n) {
                throw new IllegalArgumentException(op + ": " + d(perRow) + " should hold one value per row of logits " + d(logits)
                        + ": [" + n + "] or [" + n + ", 1]");
            }
        }
    }

    private static void rowVector(String op, Tensor x, Tensor v, String what) {
        if (v.rank() != 1 || v.dim(0) != x.dim(-1)) {
            throw new IllegalArgumentException(op + ": " + what + " " + d(v) + " should be [" + x.dim(-1) + "] for input " + d(x));
        }
    }

    private static void rowStats(String op, Tensor x, Tensor r) {
        if (r == null) return;
        if (r.numel() != x.numel() / Math.max(1, x.dim(-1))) {
            throw new IllegalArgumentException(op + ": rstd " + d(r) + " should hold one value per row of " + d(x));
        }
        if (r.dtype() != DType.F32) throw new IllegalArgumentException(op + ": rstd must be F32, got " + d(r));
    }

    public static void rmsNorm(Device dev, Tensor x, Tensor w, Tensor out, Tensor rstd) {
        sameDevice("rmsNorm", dev, x, w, out, rstd);
        sameShape("rmsNorm", x, out);
        rowVector("rmsNorm", x, w, "weight");
        rowStats("rmsNorm", x, rstd);
        floating("rmsNorm", x, w, out);
    }

    public static void rmsNormBackward(Device dev, Tensor x, Tensor w, Tensor rstd, Tensor dy, Tensor dx, Tensor dw) {
        sameDevice("rmsNormBackward", dev, x, w, rstd, dy, dx, dw);
        sameShape("rmsNormBackward", x, dy);
        sameShape("rmsNormBackward", x, dx);
        rowVector("rmsNormBackward", x, w, "weight");
        if (dw != null) rowVector("rmsNormBackward", x, dw, "dweight");
        if (rstd == null) throw new IllegalArgumentException("rmsNormBackward: rstd from the forward pass is required");
        rowStats("rmsNormBackward", x, rstd);
    }

    public static void rope(Device dev, Tensor x, Tensor out) {
        sameDevice("rope", dev, x, out);
        sameShape("rope", x, out);
        floating("rope", x, out);
        if (x.rank() < 3 || x.dim(-1) % 2 != 0) {
            throw new IllegalArgumentException("rope: expected [..., T, H, Dh] with even Dh, got " + d(x));
        }
    }

    public static void argsort(Device dev, Tensor keys, Tensor order, Tensor rank) {
        if (rank == null) sameDevice("argsort", dev, keys, order); else sameDevice("argsort", dev, keys, order, rank);
        floating("argsort", keys);
        if (keys.rank() != 1) throw new IllegalArgumentException("argsort: keys must be a vector [n], got " + d(keys));
        for (Tensor t : rank == null ? new Tensor[] {order} : new Tensor[] {order, rank}) {
            if (t.dtype() != DType.I32 || !t.shape().equals(keys.shape()) || !t.isContiguous()) {
                throw new IllegalArgumentException("argsort: " + t.label() + " must be contiguous I32 " + keys.shape() + " like the keys, got " + d(t));
            }
        }
    }

    public static void embedding(Device dev, Tensor table, Tensor ids, Tensor out) {
        sameDevice("embedding", dev, table, ids, out);
        integral("embedding", ids);
        if (table.rank() != 2) throw new IllegalArgumentException("embedding: table must be [V, D], got " + d(table));
        int[] expect = new int[ids.rank() + 1];
        System.arraycopy(ids.dims(), 0, expect, 0, ids.rank());
        expect[ids.rank()] = table.dim(1);
        if (!out.shape().equals(Shape.of(expect))) {
            throw new IllegalArgumentException("embedding: output " + d(out) + " should be " + Shape.of(expect)
                    + " for ids " + d(ids) + " and table " + d(table));
        }
    }

    public static void scatterAddRows(Device dev, Tensor ids, Tensor src, Tensor table) {
        sameDevice("scatterAddRows", dev, ids, src, table);
        integral("scatterAddRows", ids);
        if (table.rank() != 2) throw new IllegalArgumentException("scatterAddRows: table must be [V, D], got " + d(table));
        if (src.numel() != ids.numel() * (long) table.dim(1) || src.dim(-1) != table.dim(1)) {
            throw new IllegalArgumentException("scatterAddRows: src " + d(src) + " should be ids " + d(ids) + " × " + table.dim(1));
        }
    }

    public static void columns(Device dev, String op, Tensor x, Tensor ids, Tensor vec) {
        sameDevice(op, dev, x, ids, vec);
        integral(op, ids);
        if (x.rank() != 2 || ids.rank() != 1 || vec.rank() != 1 || ids.dim(0) != x.dim(0) || vec.dim(0) != x.dim(0)) {
            throw new IllegalArgumentException(op + ": expected x [N, C], ids [N], values [N]; got x " + d(x) + ", ids " + d(ids)
                    + ", values " + d(vec));
        }
    }

    public static void matmul(Device dev, Tensor a, Tensor b, Tensor out) {
        sameDevice("matmul", dev, a, b, out);
        floating("matmul", a, b, out);
        if (a.rank() < 2 || b.rank() < 2 || out.rank() < 2) {
            throw new IllegalArgumentException("matmul: operands need rank >= 2: " + d(a) + " @ " + d(b) + " -> " + d(out));
        }
        int m = a.dim(-2), k = a.dim(-1), k2 = b.dim(-2), n = b.dim(-1);
        if (k != k2) {
            throw new IllegalArgumentException("matmul: shape " + d(a) + " does not match " + d(b) + " (inner " + k + " vs " + k2 + ")");
        }
        if (out.dim(-2) != m || out.dim(-1) != n) {
            throw new IllegalArgumentException("matmul: output " + d(out) + " should end in [" + m + ", " + n + "] for "
                    + d(a) + " @ " + d(b));
        }
        Shape ba = Shape.of(java.util.Arrays.copyOf(a.dims(), a.rank() - 2));
        Shape bb = Shape.of(java.util.Arrays.copyOf(b.dims(), b.rank() - 2));
        Shape bo = Shape.of(java.util.Arrays.copyOf(out.dims(), out.rank() - 2));
        Shape bab = broadcast("matmul batch", ba, bb);
        if (!bab.equals(bo)) {
            throw new IllegalArgumentException("matmul: batch dims of " + d(a) + " and " + d(b) + " broadcast to " + bab
                    + " but output is " + d(out));
        }
    }

    public static void svd(Device dev, Tensor a, Tensor u, Tensor s, Tensor vt) {
        sameDevice("svd", dev, a, u, s, vt);
        if (a.rank() != 2) throw new IllegalArgumentException("svd: expected a matrix, got " + d(a));
        int m = a.dim(0), n = a.dim(1), k = Math.min(m, n);
        if (!u.shape().equals(Shape.of(m, k)) || !s.shape().equals(Shape.of(k)) || !vt.shape().equals(Shape.of(k, n))) {
            throw new IllegalArgumentException("svd of " + d(a) + ": expected u [" + m + ", " + k + "], s [" + k + "], vt [" + k
                    + ", " + n + "], got " + d(u) + ", " + d(s) + ", " + d(vt));
        }
        floating("svd", a, u, s, vt);
    }

    public static void random(Device dev, Tensor out) {
        sameDevice("random", dev, out);
        floating("random", out);
    }

    public static void groupQuant(Device dev, String op, Tensor x, GroupRounding rounding, QuantizedTensor q) {
        sameDevice(op, dev, x, q.codes(), q.scales(), q.zeros());
        floating(op, x);
        if (x.numel() != q.numel()) {
            throw new IllegalArgumentException(op + ": " + d(x) + " has " + x.numel() + " elements, the quantized tensor "
                    + q.codes().label() + " holds " + q.shape() + " = " + q.numel());
        }
        if (rounding instanceof GroupRounding.Given(Tensor r)) {
            sameDevice(op, dev, r);
            floating(op, r);
            if (r.numel() != x.numel()) throw new IllegalArgumentException(op + ": random numbers " + d(r) + " should have " + x.numel() + " elements");
        }
    }

    public static void quantize(Device dev, Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize) {
        sameDevice("quantizeBlockwise", dev, x, code, absmax, q);
        blockwise("quantizeBlockwise", x, code, absmax, q, blockSize);
    }

    public static void dequantize(Device dev, Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        sameDevice("dequantizeBlockwise", dev, q, code, absmax, out);
        blockwise("dequantizeBlockwise", out, code, absmax, q, blockSize);
    }

    private static void blockwise(String op, Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize) {
        if (blockSize <= 0) throw new IllegalArgumentException(op + ": block size must be positive, got " + blockSize);
        if (q.dtype() != DType.U8) throw new IllegalArgumentException(op + ": codes must be U8, got " + d(q));
        if (code.numel() != 256 || code.dtype() != DType.F32) {
            throw new IllegalArgumentException(op + ": code book must be 256 F32 values, got " + d(code));
        }
        if (q.numel() != x.numel()) throw new IllegalArgumentException(op + ": " + d(q) + " and " + d(x) + " differ in size");
        long blocks = (x.numel() + blockSize - 1) / blockSize;
        if (absmax.numel() != blocks || absmax.dtype() != DType.F32) {
            throw new IllegalArgumentException(op + ": absmax " + d(absmax) + " should be " + blocks + " F32 values");
        }
    }
}
