package dev.tally.engine.profile;

import dev.tally.engine.AdamStep;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.lang.foreign.MemorySegment;

/**
 * An {@link Ops} that forwards every call to the device's own ops and books its wall time, the bytes of its tensors
 * (inputs read + outputs written) and, for matmuls, its flops into an {@link OpProfile}. Matmuls are keyed by shape and
 * operand layout (T = transposed view) so the head's products stand out from the blocks'. Ops called from inside an op
 * are billed to the outer one.
 */
public final class ProfilingOps implements Ops {
    private final Ops inner;
    private final OpProfile profile;
    private int depth;

    public ProfilingOps(Ops inner, OpProfile profile) {
        this.inner = inner;
        this.profile = profile;
    }

    private interface Call { void run(); }

    private void time(String op, long bytes, long flops, Call call) {
        if (depth > 0) {
            call.run();
            return;
        }
        depth++;
        long t0 = System.nanoTime();
        try {
            call.run();
            inner.synchronize();
        } finally {
            depth--;
            profile.add(op, System.nanoTime() - t0, bytes, flops);
        }
    }

    private static long bytes(Tensor... ts) {
        long b = 0;
        for (Tensor t : ts) if (t != null) b += t.byteSize();
        return b;
    }

    private static String layout(Tensor t) {
        return t.rank() >= 2 && t.stride(-1) != 1 && t.dim(-1) > 1 ? "T" : "N";
    }

    @Override public Device device() { return inner.device(); }

    @Override public void fill(Tensor out, double value) { time("fill", bytes(out), 0, () -> inner.fill(out, value)); }

    @Override public void copy(Tensor src, Tensor dst) {
        String kind = src.isContiguous() && dst.isContiguous() && src.numel() == dst.numel() ? "copy" : "copy (strided/broadcast)";
        time(kind, bytes(src, dst), 0, () -> inner.copy(src, dst));
    }

    @Override public void copyFromHost(MemorySegment src, Tensor dst) { time("copyFromHost", bytes(dst), 0, () -> inner.copyFromHost(src, dst)); }

    @Override public void copyToHost(Tensor src, MemorySegment dst) { time("copyToHost", bytes(src), 0, () -> inner.copyToHost(src, dst)); }

    @Override public void unary(UnaryOp op, Tensor x, Tensor out) { time("unary " + op, bytes(x, out), 0, () -> inner.unary(op, x, out)); }

    @Override public void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        time("unaryBackward " + op, bytes(x, dy, dx), 0, () -> inner.unaryBackward(op, x, dy, dx));
    }

    @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        String kind = a.numel() == out.numel() && b.numel() == out.numel() ? "binary " + op : "binary " + op + " (broadcast)";
        time(kind, bytes(a, b, out), 0, () -> inner.binary(op, a, b, out));
    }

    @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        time("binaryScalar " + op, bytes(a, out), 0, () -> inner.binaryScalar(op, a, s, out));
    }

    @Override public void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) {
        time("axpby", bytes(x, y, out), 0, () -> inner.axpby(alpha, x, beta, y, out));
    }

    @Override public void adamStep(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v, Tensor scratch) {
        // w, m, v read and written, g read (a fused kernel's traffic; a backend that composes moves more)
        time("adamStep", bytes(w, g, m, v) + bytes(w, m, v), 0, () -> inner.adamStep(s, w, g, m, v, scratch));
    }

    @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
        time("where", bytes(cond, a, b, out), 0, () -> inner.where(cond, a, b, out));
    }

    @Override public void reduce(ReduceOp op, Tensor x, int dim, Tensor out) {
        String kind = "reduce " + op + (x.shape().normalize(dim) == x.rank() - 1 ? " (last dim)" : " (dim " + dim + ")");
        time(kind, bytes(x, out), 0, () -> inner.reduce(op, x, dim, out));
    }

    @Override public void reduceAll(ReduceOp op, Tensor x, Tensor out) { time("reduceAll " + op, bytes(x, out), 0, () -> inner.reduceAll(op, x, out)); }

    @Override public void softmax(Tensor x, Tensor out, boolean causal) {
        time(causal ? "softmax (causal)" : "softmax", bytes(x, out), 0, () -> inner.softmax(x, out, causal));
    }

    @Override public void logSoftmax(Tensor x, Tensor out) { time("logSoftmax", bytes(x, out), 0, () -> inner.logSoftmax(x, out)); }

    @Override public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        time("softmaxBackward", bytes(y, dy, dx), 0, () -> inner.softmaxBackward(y, dy, dx));
    }

    @Override public void softmaxCrossEntropyGrad(Tensor logits, Tensor lse, Tensor targets, long targetOffset, Tensor rowScale, Tensor out) {
        time("softmaxCrossEntropyGrad", bytes(logits, lse, targets, rowScale, out), 0,
                () -> inner.softmaxCrossEntropyGrad(logits, lse, targets, targetOffset, rowScale, out));
    }

    @Override public void rmsNorm(Tensor x, Tensor weight, double eps, Tensor out, Tensor rstd) {
        time("rmsNorm", bytes(x, weight, out, rstd), 0, () -> inner.rmsNorm(x, weight, eps, out, rstd));
    }

    @Override public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        time("rmsNormBackward", bytes(x, weight, rstd, dy, dx, dweight), 0, () -> inner.rmsNormBackward(x, weight, rstd, dy, dx, dweight));
    }

    @Override public void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse) {
        time(inverse ? "rope (inverse)" : "rope", bytes(x, out), 0, () -> inner.rope(x, out, positionOffset, base, inverse));
    }

    @Override public void quantizeGroups(Tensor x, dev.tally.engine.GroupRounding rounding, dev.tally.engine.QuantizedTensor q) {
        time("quantizeGroups", bytes(x, q.codes(), q.scales(), q.zeros()), 0, () -> inner.quantizeGroups(x, rounding, q));
    }

    @Override public void dequantizeGroups(dev.tally.engine.QuantizedTensor q, Tensor out) {
        time("dequantizeGroups", bytes(q.codes(), q.scales(), q.zeros(), out), 0, () -> inner.dequantizeGroups(q, out));
    }

    @Override public void causalAttention(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        long t = q.dim(2), flops = 2L * q.numel() * (t + 1); // two products over the causal half: 2·(B·H·T(T+1)/2)·Dh each
        time("causalAttention (fused)", bytes(q, k, v, out, lse), flops, () -> inner.causalAttention(q, k, v, scale, out, lse));
    }

    @Override public void causalAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                                                  Tensor dq, Tensor dk, Tensor dv) {
        long t = q.dim(2), flops = 5L * q.numel() * (t + 1);
        time("causalAttentionBackward (fused)", bytes(q, k, v, out, lse, dout, dq, dk, dv), flops,
                () -> inner.causalAttentionBackward(q, k, v, out, lse, dout, scale, dq, dk, dv));
    }

    @Override public void argsort(Tensor keys, Tensor order, Tensor rank) {
        time("argsort", bytes(keys, order) + (rank == null ? 0 : bytes(rank)), 0, () -> inner.argsort(keys, order, rank));
    }

    @Override public void embedding(Tensor table, Tensor ids, Tensor out) {
        time("embedding", bytes(ids, out) * 2, 0, () -> inner.embedding(table, ids, out));
    }

    @Override public void scatterAddRows(Tensor ids, Tensor src, Tensor table) {
        time("scatterAddRows", bytes(ids, src) * 2, 0, () -> inner.scatterAddRows(ids, src, table));
    }

    @Override public void gatherColumns(Tensor x, Tensor ids, Tensor out) {
        time("gatherColumns", bytes(ids, out), 0, () -> inner.gatherColumns(x, ids, out));
    }

    @Override public void scatterAddColumns(Tensor ids, Tensor src, Tensor x) {
        time("scatterAddColumns", bytes(ids, src), 0, () -> inner.scatterAddColumns(ids, src, x));
    }

    @Override public void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        long batch = out.numel() / ((long) out.dim(-2) * out.dim(-1));
        int m = out.dim(-2), n = out.dim(-1), k = a.dim(-1);
        String kind = String.format("matmul %s%s %s%dx%dx%d%s", layout(a), layout(b), batch > 1 ? batch + "x " : "", m, n, k,
                beta != 0 ? " +=" : "");
        time(kind, bytes(a, b, out), 2L * batch * m * n * k, () -> inner.matmul(a, b, out, alpha, beta));
    }

    @Override public void svd(Tensor a, Tensor u, Tensor s, Tensor vt) { time("svd", bytes(a, u, s, vt), 0, () -> inner.svd(a, u, s, vt)); }

    @Override public void random(Tensor out, Distribution dist, long seed, long offset, double a, double b) {
        time("random", bytes(out), 0, () -> inner.random(out, dist, seed, offset, a, b));
    }

    @Override public void quantizeBlockwise(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        time("quantizeBlockwise", bytes(x, absmax, q), 0, () -> inner.quantizeBlockwise(x, code, absmax, q, blockSize, signed));
    }

    @Override public void dequantizeBlockwise(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        time("dequantizeBlockwise", bytes(q, absmax, out), 0, () -> inner.dequantizeBlockwise(q, code, absmax, out, blockSize));
    }

    @Override public void synchronize() { inner.synchronize(); }
}
