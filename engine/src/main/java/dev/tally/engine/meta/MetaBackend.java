package dev.tally.engine.meta;

import dev.tally.engine.Backend;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.internal.Checks;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.Ops;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Region;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.lang.foreign.MemorySegment;

/**
 * The META device: arenas book offsets but hold no memory; ops validate their arguments exactly as a real backend does
 * and compute nothing. Running a training step here yields the real step's bookings — the memory plan — for any size.
 */
public final class MetaBackend implements Backend, Ops {

    @Override public Device device() { return Device.META; }

    @Override public Ops ops() { return this; }

    @Override public Region reserve(long bytes, String arenaName) {
        return new Region() {
            @Override public long byteSize() { return bytes; }
            @Override public MemorySegment segment() {
                throw new UnsupportedOperationException("arena '" + arenaName + "' is on the META device: it holds no memory");
            }
            @Override public long address() { return 0; }
            @Override public void close() {}
        };
    }

    private static UnsupportedOperationException noData(String what) {
        return new UnsupportedOperationException(what + ": META tensors hold no data (plan on META, compute on cpu or cuda)");
    }

    @Override public void fill(Tensor out, double value) { Checks.sameDevice("fill", Device.META, out); }
    @Override public void copy(Tensor src, Tensor dst) { Checks.copy(Device.META, src, dst); }
    @Override public void copyFromHost(MemorySegment src, Tensor dst) { throw noData("copyFromHost to " + dst); }
    @Override public void copyToHost(Tensor src, MemorySegment dst) { throw noData("copyToHost from " + src); }
    @Override public void unary(UnaryOp op, Tensor x, Tensor out) { Checks.unary(Device.META, op, x, out); }
    @Override public void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) { Checks.unaryBackward(Device.META, op, x, dy, dx); }
    @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) { Checks.binary(Device.META, op, a, b, out); }
    @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) { Checks.binaryScalar(Device.META, op, a, out); }
    @Override public void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) { Checks.axpby(Device.META, x, y, out); }
    @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) { Checks.where(Device.META, cond, a, b, out); }
    @Override public void reduce(ReduceOp op, Tensor x, int dim, Tensor out) { Checks.reduce(Device.META, op, x, dim, out); }
    @Override public void reduceAll(ReduceOp op, Tensor x, Tensor out) { Checks.reduceAll(Device.META, op, x, out); }
    @Override public void softmax(Tensor x, Tensor out, boolean causal) { Checks.softmax(Device.META, "softmax", x, out, causal); }
    @Override public void logSoftmax(Tensor x, Tensor out) { Checks.softmax(Device.META, "logSoftmax", x, out, false); }
    @Override public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) { Checks.softmaxBackward(Device.META, y, dy, dx); }
    @Override public void softmaxCrossEntropyGrad(Tensor logits, Tensor lse, Tensor targets, long targetOffset, Tensor rowScale, Tensor out) {
        Checks.softmaxCrossEntropyGrad(Device.META, logits, lse, targets, rowScale, out);
    }
    @Override public void causalAttention(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse) {
        Checks.causalAttention(Device.META, q, k, v, out, lse);
    }
    @Override public void causalAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                                                  Tensor dq, Tensor dk, Tensor dv) {
        Checks.causalAttentionBackward(Device.META, q, k, v, out, lse, dout, dq, dk, dv);
    }
    @Override public void rmsNorm(Tensor x, Tensor w, double eps, Tensor out, Tensor rstd) { Checks.rmsNorm(Device.META, x, w, out, rstd); }
    @Override public void rmsNormBackward(Tensor x, Tensor w, Tensor rstd, Tensor dy, Tensor dx, Tensor dw) {
        Checks.rmsNormBackward(Device.META, x, w, rstd, dy, dx, dw);
    }
    @Override public void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse) { Checks.rope(Device.META, x, out); }
    @Override public void argsort(Tensor keys, Tensor order, Tensor rank) { Checks.argsort(Device.META, keys, order, rank); }
    @Override public void embedding(Tensor table, Tensor ids, Tensor out) { Checks.embedding(Device.META, table, ids, out); }
    @Override public void scatterAddRows(Tensor ids, Tensor src, Tensor table) { Checks.scatterAddRows(Device.META, ids, src, table); }
    @Override public void gatherColumns(Tensor x, Tensor ids, Tensor out) { Checks.columns(Device.META, "gatherColumns", x, ids, out); }
    @Override public void scatterAddColumns(Tensor ids, Tensor src, Tensor x) { Checks.columns(Device.META, "scatterAddColumns", x, ids, src); }
    @Override public void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) { Checks.matmul(Device.META, a, b, out); }
    @Override public void svd(Tensor a, Tensor u, Tensor s, Tensor vt) { Checks.svd(Device.META, a, u, s, vt); }
    @Override public void random(Tensor out, Distribution dist, long seed, long offset, double a, double b) { Checks.random(Device.META, out); }
    @Override public void quantizeBlockwise(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        Checks.quantize(Device.META, x, code, absmax, q, blockSize);
    }
    @Override public void dequantizeBlockwise(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        Checks.dequantize(Device.META, q, code, absmax, out, blockSize);
    }
    @Override public void quantizeGroups(Tensor x, GroupRounding rounding, QuantizedTensor q) {
        Checks.groupQuant(Device.META, "quantizeGroups", x, rounding, q);
    }
    @Override public void dequantizeGroups(QuantizedTensor q, Tensor out) {
        Checks.groupQuant(Device.META, "dequantizeGroups", out, GroupRounding.NEAREST, q);
    }
}
