package dev.tally.optim;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

/**
 * Everything one parameter's update needs, plus the few composite helpers every rule uses. Temporaries come from the
 * optimizer's workspace arena inside a scope opened by the caller, so a step books nothing that outlives it.
 */
final class Step {
    final Ops ops;
    final MemoryArena workspace;
    final Hyper h;
    /** The group's learning rate times the schedule's factor. */
    final double lr;
    final ParamState state;
    /** The full weight (Adafactor's relative scale reads its RMS even when the rule sees a projected gradient). */
    final Tensor weight;
    /** The 8-bit dynamic code maps shared by every parameter (null for methods without quantized state). */
    final CodeMaps codes;
    /** Where projection matrices come from (computed, or the reference's own in replay tests). */
    final Projections projections;

    Step(Ops ops, MemoryArena workspace, Hyper h, double lr, ParamState state, Tensor weight, CodeMaps codes, Projections projections) {
        this.ops = ops;
        this.workspace = workspace;
        this.h = h;
        this.lr = lr;
        this.state = state;
        this.weight = weight;
        this.codes = codes;
        this.projections = projections;
    }

    /** bitsandbytes' signed (first moment) and unsigned (second moment) code maps, 256 fp32 values each. */
    record CodeMaps(Tensor signed, Tensor unsigned) {}

    /** 1-based step number of the update in progress. */
    long t() { return state.step; }

    Tensor tmp(Shape shape) { return workspace.allocate("optimizer.tmp", DType.F32, shape); }

    Tensor tmp(int... shape) { return tmp(Shape.of(shape)); }

    /** state = beta·state + (1 − beta)·x */
    void ema(Tensor state, double beta, Tensor x) { ops.axpby(beta, state, 1 - beta, x, state); }

    /** out[1] = sqrt(mean(x²)) */
    Tensor rms(Tensor x) {
        Tensor r = tmp(1);
        ops.reduceAll(ReduceOp.NORM2, x, r);
        ops.binaryScalar(BinaryOp.DIV, r, Math.sqrt(x.numel()), r);
        return r;
    }

    /** x /= max(1, rms(x) / threshold): the update clipping of Adafactor and CAME. */
    void clipByRms(Tensor x, double threshold) {
        Tensor r = rms(x);
        ops.binaryScalar(BinaryOp.DIV, r, threshold, r);
        ops.binaryScalar(BinaryOp.MAX, r, 1.0, r);
        ops.binary(BinaryOp.DIV, x, r, x);
    }

    /**
     * Adafactor's factored second-moment estimate applied to {@code g}: out = g · rsqrt(row/mean(row)) ⊗ rsqrt(col), for
     * row [m] and col [n] statistics of an [m, n] matrix.
     */
    void factoredScale(Tensor row, Tensor col, Tensor g, Tensor out) {
        int m = g.dim(0), n = g.dim(1);
        Tensor mean = tmp(1);
        ops.reduceAll(ReduceOp.MEAN, row, mean);
        Tensor r = tmp(m, 1);
        ops.binary(BinaryOp.DIV, row.reshape(m, 1), mean, r);
        ops.unary(UnaryOp.RSQRT, r, r);
        Tensor c = tmp(1, n);
        ops.unary(UnaryOp.RSQRT, col.reshape(1, n), c);
        // two broadcast products instead of materializing the m×n outer product r ⊗ c
        ops.binary(BinaryOp.MUL, g, r, out);
        ops.binary(BinaryOp.MUL, out, c, out);
    }

    /** row = β·row + (1−β)·mean(u, −1); col = β·col + (1−β)·mean(u, −2), for u [m, n]. */
    void factoredEma(Tensor row, Tensor col, Tensor u, double beta) {
        int m = u.dim(0), n = u.dim(1);
        Tensor rm = tmp(m, 1), cm = tmp(1, n);
        ops.reduce(ReduceOp.MEAN, u, 1, rm);
        ops.reduce(ReduceOp.MEAN, u, 0, cm);
        ops.axpby(beta, row, 1 - beta, rm.reshape(m), row);
        ops.axpby(beta, col, 1 - beta, cm.reshape(n), col);
    }
}
