package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;

/**
 * The ordinary way, and the reference for {@link CutCrossEntropy}: the N×V fp32 logits are materialized in forward and
 * their gradient is a second N×V buffer in backward — what an autograd framework holds — so this path books 8·N·V
 * bytes of loss memory at its peak.
 */
public final class CrossEntropy implements LinearCrossEntropy {

    private record State(MemoryArena arena, Tensor e, Tensor c, Tensor targets, Tensor logits, Tensor lse, Tensor mask, Tensor count)
            implements Saved {
        @Override public void free() {
            for (Tensor t : new Tensor[] {count, mask, lse, logits}) arena.free(t);
        }
    }

    /**
     * Saved for backward: logits (N×V), lse, mask (N each), count; forward's temporaries: target logit and nll (N each);
     * backward's: the logits gradient (N×V), the row scales (N), the scale. Peak = saved + backward's.
     */
    @Override public long lossArenaBytes(int n, int d, int v) {
        long logits = MemoryArena.alignUp(4L * n * v), row = MemoryArena.alignUp(4L * n), one = MemoryArena.alignUp(4);
        long saved = logits + 2 * row + one;
        long forwardTemps = 2 * row, backwardTemps = logits + row + one;
        return saved + Math.max(forwardTemps, backwardTemps);
    }

    @Override public Saved forward(Tensor e, Tensor c, Tensor targets, Tensor loss, MemoryArena arena) {
        LossChecks.check(e, c, targets, loss);
        Ops ops = e.ops();
        int n = e.dim(0), v = c.dim(0);
        Tensor logits = arena.allocate("loss.ce.logits", DType.F32, n, v);
        Tensor lse = arena.allocate("loss.ce.lse", DType.F32, n, 1);
        Tensor mask = arena.allocate("loss.ce.mask", DType.F32, n);
        Tensor count = arena.allocate("loss.ce.count", DType.F32, 1);
        ops.matmul(e, c.t(), logits, 1, 0);
        ops.reduce(ReduceOp.LOGSUMEXP, logits, 1, lse);
        ops.binaryScalar(BinaryOp.NE, targets, IGNORE_INDEX, mask);
        ops.reduceAll(ReduceOp.SUM, mask, count);
        Tensor target = arena.allocate("loss.ce.target_logit", DType.F32, n);
        Tensor nll = arena.allocate("loss.ce.nll", DType.F32, n);
        ops.gatherColumns(logits, targets, target);
        ops.binary(BinaryOp.SUB, lse.reshape(n), target, nll);
        ops.binary(BinaryOp.MUL, nll, mask, nll);
        ops.reduceAll(ReduceOp.SUM, nll, loss);
        ops.binary(BinaryOp.DIV, loss, count, loss);
        arena.free(nll);
        arena.free(target);
        return new State(arena, e, c, targets, logits, lse, mask, count);
    }

    @Override public void backward(Saved saved, Tensor dLoss, Tensor dE, Tensor dC, MemoryArena arena) {
        State s = (State) saved;
        Ops ops = dE.ops();
        int n = s.logits.dim(0);
        // d logits = (softmax − onehot) · mask · dLoss / count, in one pass over the logits
        Tensor dLogits = arena.allocate("loss.ce.dlogits", DType.F32, s.logits.dims());
        Tensor g = arena.allocate("loss.ce.scale", DType.F32, 1);
        Tensor rowScale = arena.allocate("loss.ce.row_scale", DType.F32, n, 1);
        // divide by max(count, 1): with no valid target the loss is NaN (0/0, as torch's mean) but the gradients are 0
        ops.binaryScalar(BinaryOp.MAX, s.count, 1, g);
        ops.binary(BinaryOp.DIV, dLoss, g, g);
        ops.binary(BinaryOp.MUL, s.mask.reshape(n, 1), g, rowScale);
        ops.softmaxCrossEntropyGrad(s.logits, s.lse, s.targets, 0, rowScale, dLogits);
        arena.free(rowScale);
        arena.free(g);
        ops.matmul(dLogits, s.c, dE, 1, 0);
        if (dC != null) ops.matmul(dLogits.t(), s.e, dC, 1, 1);
        arena.free(dLogits);
        s.free();
    }
}
