package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Distribution;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.util.List;

/**
 * APOLLO (Zhu et al. 2025): Adam moments of a random projection R of the gradient only estimate a <em>scaling</em> of the
 * raw gradient. P has entries N(0, 1/r), is regenerated from a per-parameter seed (never stored: its memory is the seed)
 * and changes when the 0-based step is a multiple of update_proj_gap. Scaling is channel-wise (one factor per index of
 * the larger dimension: ‖R̃‖/‖R‖ along the rank axis) or tensor-wise (Frobenius norms), with R̃ = M/(√V + eps) from the
 * uncorrected moments; √scale multiplies the scaled gradient; the norm-growth limiter (γ = 1.01) caps its norm relative
 * to the previous step's limited norm (skipped on the first step); bias correction enters only the step size;
 * W ← W − lr·wd·W after the update. APOLLO-Mini is rank 1 with tensor scaling and scale 128.
 */
final class ApolloUpdater implements Updater {
    private static final double GAMMA = 1.01;

    private final int rank;
    private final int gap;
    private final boolean channel;

    ApolloUpdater(int rank, int gap, boolean channel) {
        this.rank = rank;
        this.gap = gap;
        this.channel = channel;
    }

    @Override public List<StateSpec> specs(Shape param) {
        Shape low = GaloreUpdater.lowRankShape(param, rank);
        return List.of(new StateSpec("exp_avg", DType.F32, low, StateSpec.Kind.MOMENT),
                new StateSpec("exp_avg_sq", DType.F32, low, StateSpec.Kind.MOMENT),
                new StateSpec("scaled_grad_norm", DType.F32, Shape.of(1), StateSpec.Kind.SCALAR));
    }

    /** The SplitMix64 step: the next projection seed after a refresh (a deterministic, well-mixed sequence). */
    static long nextSeed(long seed) {
        long z = seed + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override public void update(Step s, Parameter p, Tensor w, Tensor g) {
        int m = w.dim(0), n = w.dim(1);
        boolean right = m >= n;
        if (s.state.step % gap == 0) {
            if (s.state.refreshes > 0) s.state.seed = nextSeed(s.state.seed);
            s.state.refreshes++;
        }
        Tensor proj = s.tmp(GaloreUpdater.basisShape(w.shape(), rank));
        float[] given = s.projections.supplied(p, (int) s.state.refreshes - 1);
        if (given != null) {
            proj.copyFrom(given);
        } else {
            s.ops.random(proj, Distribution.NORMAL, s.state.seed, 0, 0, 1 / Math.sqrt(rank));
        }
        Shape low = GaloreUpdater.lowRankShape(w.shape(), rank);
        Tensor r = s.tmp(low);
        if (right) s.ops.matmul(g, proj.t(), r, 1, 0); else s.ops.matmul(proj.t(), g, r, 1, 0);
        s.state.step++;
        double b1 = s.h.tuple("betas", 0), b2 = s.h.tuple("betas", 1), eps = s.h.d("eps");
        Tensor mom = s.state.get("exp_avg"), v = s.state.get("exp_avg_sq");
        s.ema(mom, b1, r);
        Tensor tmp = s.tmp(low);
        s.ops.unary(UnaryOp.SQUARE, r, tmp);
        s.ema(v, b2, tmp);
        double bc1 = 1 - Math.pow(b1, s.t()), bc2 = 1 - Math.pow(b2, s.t());
        double stepSize = s.h.b("correct_bias") ? s.lr * Math.sqrt(bc2) / bc1 : s.lr;
        Tensor normed = tmp; // R̃ = M / (sqrt(V) + eps)
        s.ops.unary(UnaryOp.SQRT, v, normed);
        s.ops.binaryScalar(BinaryOp.ADD, normed, eps, normed);
        s.ops.binary(BinaryOp.DIV, mom, normed, normed);

        Tensor factor;
        if (channel) {
            // one factor per index of the larger dimension: norms along the rank axis
            int axis = right ? 1 : 0;
            Shape fs = right ? Shape.of(m, 1) : Shape.of(1, n);
            Tensor num = s.tmp(fs), den = s.tmp(fs);
            s.ops.reduce(ReduceOp.NORM2, normed, axis, num);
            s.ops.reduce(ReduceOp.NORM2, r, axis, den);
            s.ops.binaryScalar(BinaryOp.ADD, den, 1e-8, den);
            s.ops.binary(BinaryOp.DIV, num, den, num);
            factor = num;
        } else {
            Tensor num = s.tmp(1), den = s.tmp(1);
            s.ops.reduceAll(ReduceOp.NORM2, normed, num);
            s.ops.reduceAll(ReduceOp.NORM2, r, den);
            s.ops.binaryScalar(BinaryOp.ADD, den, 1e-8, den);
            s.ops.binary(BinaryOp.DIV, num, den, num);
            factor = num;
        }
        Tensor scaled = s.tmp(w.shape());
        s.ops.binary(BinaryOp.MUL, g, factor, scaled);
        double sqrtScale = Math.sqrt(s.h.d("scale"));
        boolean front = s.h.b("scale_front");
        if (front) s.ops.binaryScalar(BinaryOp.MUL, scaled, sqrtScale, scaled);
        if (!s.h.b("disable_nl")) limit(s, scaled);
        if (!front) s.ops.binaryScalar(BinaryOp.MUL, scaled, sqrtScale, scaled);
        s.ops.axpby(1, w, -stepSize, scaled, w);
        double wd = s.h.d("weight_decay");
        if (wd > 0) s.ops.axpby(1, w, -s.lr * wd, w, w);
    }

    /** Norm-growth limiter, on device: no host read, so META and CUDA run the same code. */
    private static void limit(Step s, Tensor scaled) {
        Tensor prev = s.state.get("scaled_grad_norm");
        Tensor norm = s.tmp(1);
        s.ops.reduceAll(ReduceOp.NORM2, scaled, norm);
        if (s.state.step == 1) { // first step: remember the norm, no limiting
            s.ops.copy(norm, prev);
            return;
        }
        Tensor lim = s.tmp(1);
        s.ops.binaryScalar(BinaryOp.ADD, prev, 1e-8, lim);
        s.ops.binary(BinaryOp.DIV, norm, lim, lim);
        s.ops.binaryScalar(BinaryOp.MAX, lim, GAMMA, lim);
        s.ops.binaryScalar(BinaryOp.DIV, lim, GAMMA, lim);
        s.ops.binary(BinaryOp.DIV, scaled, lim, scaled);
        s.ops.binary(BinaryOp.DIV, norm, lim, prev);
    }
}
