package dev.tally.engine.cpu;

import dev.tally.engine.AdamStep;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.internal.Checks;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.Ops;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.lang.foreign.MemorySegment;

/** The reference implementation of {@link Ops}: validates with {@link Checks}, then runs the kernel classes. */
public final class CpuOps implements Ops {
    private final Device device;

    public CpuOps(Device device) {
        this.device = device;
    }

    @Override public Device device() { return device; }

    @Override public void fill(Tensor out, double value) {
        Checks.sameDevice("fill", device, out);
        Elementwise.fill(out, value);
    }

    @Override public void copy(Tensor src, Tensor dst) {
        Checks.copy(device, src, dst);
        Elementwise.copy(src, dst);
    }

    @Override public void copyFromHost(MemorySegment src, Tensor dst) {
        Checks.sameDevice("copyFromHost", device, dst);
        Elementwise.copyFromHost(src, dst);
    }

    @Override public void copyToHost(Tensor src, MemorySegment dst) {
        Checks.sameDevice("copyToHost", device, src);
        Elementwise.copyToHost(src, dst);
    }

    @Override public void unary(UnaryOp op, Tensor x, Tensor out) {
        Checks.unary(device, op, x, out);
        Elementwise.unary(op, x, out);
    }

    @Override public void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        Checks.unaryBackward(device, op, x, dy, dx);
        Elementwise.unaryBackward(op, x, dy, dx);
    }

    @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        Checks.binary(device, op, a, b, out);
        Elementwise.binary(op, a, b, out);
    }

    @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        Checks.binaryScalar(device, op, a, out);
        Elementwise.binaryScalar(op, a, s, out);
    }

    @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
        Checks.where(device, cond, a, b, out);
        Elementwise.where(cond, a, b, out);
    }

    @Override public void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) {
        Checks.axpby(device, x, y, out);
        Elementwise.axpby(alpha, x, beta, y, out);
    }

    @Override public void adamStep(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v, Tensor scratch) {
        Checks.adamStep(device, w, g, m, v, scratch);
        if (!AdamKernel.step(s, w, g, m, v)) Ops.super.adamStep(s, w, g, m, v, scratch);
    }

    @Override public void argsort(Tensor keys, Tensor order, Tensor rank) {
        Checks.argsort(device, keys, order, rank);
        Indexing.argsort(keys, order, rank);
    }

    @Override public void reduce(ReduceOp op, Tensor x, int dim, Tensor out) {
        Checks.reduce(device, op, x, dim, out);
        Reductions.reduce(op, x, dim, out);
    }

    @Override public void reduceAll(ReduceOp op, Tensor x, Tensor out) {
        Checks.reduceAll(device, op, x, out);
        Reductions.reduceAll(op, x, out);
    }

    @Override public void softmax(Tensor x, Tensor out, boolean causal) {
        Checks.softmax(device, "softmax", x, out, causal);
        NnKernels.softmax(x, out, causal);
    }

    @Override public void logSoftmax(Tensor x, Tensor out) {
        Checks.softmax(device, "logSoftmax", x, out, false);
        NnKernels.logSoftmax(x, out);
    }

    @Override public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        Checks.softmaxBackward(device, y, dy, dx);
        NnKernels.softmaxBackward(y, dy, dx);
    }

    @Override public void softmaxCrossEntropyGrad(Tensor logits, Tensor lse, Tensor targets, long targetOffset, Tensor rowScale, Tensor out) {
        Checks.softmaxCrossEntropyGrad(device, logits, lse, targets, rowScale, out);
        CrossEntropyGrad.run(logits, lse, targets, targetOffset, rowScale, out);
    }

    @Override public void rmsNorm(Tensor x, Tensor weight, double eps, Tensor out, Tensor rstd) {
        Checks.rmsNorm(device, x, weight, out, rstd);
        NnKernels.rmsNorm(x, weight, eps, out, rstd);
    }

    @Override public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        Checks.rmsNormBackward(device, x, weight, rstd, dy, dx, dweight);
        NnKernels.rmsNormBackward(x, weight, rstd, dy, dx, dweight);
    }

    @Override public void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse) {
        Checks.rope(device, x, out);
        NnKernels.rope(x, out, positionOffset, base, inverse);
    }

    @Override public void causalAttention(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        Checks.causalAttention(device, q, k, v, out, lse);
        FlashAttention.forward(q, k, v, scale, out, lse);
    }

    @Override public void causalAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                                                  Tensor dq, Tensor dk, Tensor dv) {
        Checks.causalAttentionBackward(device, q, k, v, out, lse, dout, dq, dk, dv);
        FlashAttention.backward(q, k, v, out, lse, dout, scale, dq, dk, dv);
    }

    @Override public void embedding(Tensor table, Tensor ids, Tensor out) {
        Checks.embedding(device, table, ids, out);
        Indexing.embedding(table, ids, out);
    }

    @Override public void scatterAddRows(Tensor ids, Tensor src, Tensor table) {
        Checks.scatterAddRows(device, ids, src, table);
        Indexing.scatterAddRows(ids, src, table);
    }

    @Override public void gatherColumns(Tensor x, Tensor ids, Tensor out) {
        Checks.columns(device, "gatherColumns", x, ids, out);
        Indexing.gatherColumns(x, ids, out);
    }

    @Override public void scatterAddColumns(Tensor ids, Tensor src, Tensor x) {
        Checks.columns(device, "scatterAddColumns", x, ids, src);
        Indexing.scatterAddColumns(ids, src, x);
    }

    @Override public void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        Checks.matmul(device, a, b, out);
        Matmul.matmul(a, b, out, alpha, beta);
    }

    @Override public void svd(Tensor a, Tensor u, Tensor s, Tensor vt) {
        Checks.svd(device, a, u, s, vt);
        JacobiSvd.svd(a, u, s, vt);
    }

    @Override public void random(Tensor out, Distribution dist, long seed, long offset, double a, double b) {
        Checks.random(device, out);
        RandomFill.random(out, dist, seed, offset, a, b);
    }

    @Override public void quantizeBlockwise(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        Checks.quantize(device, x, code, absmax, q, blockSize);
        BlockQuant.quantize(x, code, absmax, q, blockSize, signed);
    }

    @Override public void dequantizeBlockwise(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        Checks.dequantize(device, q, code, absmax, out, blockSize);
        BlockQuant.dequantize(q, code, absmax, out, blockSize);
    }

    @Override public void quantizeGroups(Tensor x, GroupRounding rounding, QuantizedTensor q) {
        Checks.groupQuant(device, "quantizeGroups", x, rounding, q);
        GroupQuant.quantize(x, rounding, q);
    }

    @Override public void dequantizeGroups(QuantizedTensor q, Tensor out) {
        Checks.groupQuant(device, "dequantizeGroups", out, GroupRounding.NEAREST, q);
        GroupQuant.dequantize(q, out);
    }
}
