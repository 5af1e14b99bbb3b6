package dev.tally.optim;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.util.ArrayList;
import java.util.List;

/**
 * Adafactor as HF transformers implements it: step-dependent β2t = 1 − t^decay_rate, factored second moment for
 * matrices (row and column means of g² + eps1), update clipping by RMS, optional relative step size
 * min(1e-2, 1/√t) scaled by max(eps2, RMS(W)) (RMS of the full weight, taken before the update), optional β1 momentum
 * on the lr-scaled update, and weight decay −wd·lr_t·W before the update.
 */
final class AdafactorRule implements Rule {

    /** Factored (or full) second-moment statistics, plus exp_avg when β1 momentum is on. */
    @Override public List<StateSpec> specs(Shape g, Hyper h) {
        List<StateSpec> s = new ArrayList<>();
        if (factored(g)) {
            s.add(new StateSpec("exp_avg_sq_row", DType.F32, Shape.of(g.dim(0)), StateSpec.Kind.FACTORED));
            s.add(new StateSpec("exp_avg_sq_col", DType.F32, Shape.of(g.dim(1)), StateSpec.Kind.FACTORED));
        } else {
            s.add(new StateSpec("exp_avg_sq", DType.F32, g, StateSpec.Kind.MOMENT));
        }
        if (!h.isNull("beta1")) s.add(new StateSpec("exp_avg", DType.F32, g, StateSpec.Kind.MOMENT));
        return s;
    }

    static boolean factored(Shape g) {
        if (g.rank() > 2) throw new IllegalArgumentException("factored optimizers support 1-D and 2-D parameters, got " + g);
        return g.rank() == 2;
    }

    @Override public Decay direction(Step s, Tensor g, Tensor delta) {
        double eps1 = s.h.tuple("eps", 0), eps2 = s.h.tuple("eps", 1);
        double t = s.t();
        double rel;
        if (s.h.b("relative_step")) {
            double minStep = s.h.b("warmup_init") ? 1e-6 * t : 1e-2;
            rel = Math.min(minStep, 1.0 / Math.sqrt(t));
            rel *= s.lr; // the schedule's factor: lr carries it (1.0 when no schedule)
        } else {
            rel = s.lr;
        }
        Tensor lrT = s.tmp(1);
        if (s.h.b("scale_parameter")) {
            Tensor r = s.rms(s.weight);
            s.ops.binaryScalar(BinaryOp.MAX, r, eps2, lrT);
            s.ops.binaryScalar(BinaryOp.MUL, lrT, rel, lrT);
        } else {
            s.ops.fill(lrT, rel);
        }
        double beta2t = 1.0 - Math.pow(t, s.h.d("decay_rate"));
        Tensor u = delta; // the update is built in place in delta
        s.ops.unary(UnaryOp.SQUARE, g, u);
        s.ops.binaryScalar(BinaryOp.ADD, u, eps1, u);
        if (factored(g.shape())) {
            Tensor row = s.state.get("exp_avg_sq_row"), col = s.state.get("exp_avg_sq_col");
            s.factoredEma(row, col, u, beta2t);
            s.factoredScale(row, col, g, u);
        } else {
            Tensor v = s.state.get("exp_avg_sq");
            s.ema(v, beta2t, u);
            s.ops.unary(UnaryOp.RSQRT, v, u);
            s.ops.binary(BinaryOp.MUL, u, g, u);
        }
        s.clipByRms(u, s.h.d("clip_threshold"));
        s.ops.binary(BinaryOp.MUL, u, lrT, u);
        if (!s.h.isNull("beta1")) {
            Tensor m = s.state.get("exp_avg");
            s.ema(m, s.h.d("beta1"), u);
            s.ops.copy(m, delta);
        }
        double wd = s.h.d("weight_decay");
        if (wd == 0) return Decay.NONE;
        return Decay.before(w -> { // W·(1 − wd·lr_t), lr_t the data-dependent step size above: one [1] tensor, not a copy of W
            Tensor factor = s.tmp(1);
            s.ops.binaryScalar(BinaryOp.MUL, lrT, -wd, factor);
            s.ops.binaryScalar(BinaryOp.ADD, factor, 1, factor);
            s.ops.binary(BinaryOp.MUL, w, factor, w);
        });
    }
}
