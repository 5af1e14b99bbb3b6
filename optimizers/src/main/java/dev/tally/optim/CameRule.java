package dev.tally.optim;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.util.ArrayList;
import java.util.List;

/**
 * CAME (Luo et al. 2023) as its reference implements it: Adafactor-style factored second moment with constant β2, RMS
 * clipping, first moment m, then a confidence estimate — the factored EMA (β3) of the instability (U − m)² + eps2 —
 * rescales m. 1-D parameters get no confidence factor (the update is m). No bias correction; weight decay −wd·lr·W
 * before the update.
 */
final class CameRule implements Rule {

    @Override public List<StateSpec> specs(Shape g, Hyper h) {
        List<StateSpec> s = new ArrayList<>();
        s.add(new StateSpec("exp_avg", DType.F32, g, StateSpec.Kind.MOMENT));
        if (AdafactorRule.factored(g)) {
            Shape r = Shape.of(g.dim(0)), c = Shape.of(g.dim(1));
            s.add(new StateSpec("exp_avg_sq_row", DType.F32, r, StateSpec.Kind.FACTORED));
            s.add(new StateSpec("exp_avg_sq_col", DType.F32, c, StateSpec.Kind.FACTORED));
            s.add(new StateSpec("exp_avg_res_row", DType.F32, r, StateSpec.Kind.FACTORED));
            s.add(new StateSpec("exp_avg_res_col", DType.F32, c, StateSpec.Kind.FACTORED));
        } else {
            s.add(new StateSpec("exp_avg_sq", DType.F32, g, StateSpec.Kind.MOMENT));
        }
        return s;
    }

    @Override public Decay direction(Step s, Tensor g, Tensor delta) {
        double eps1 = s.h.tuple("eps", 0), eps2 = s.h.tuple("eps", 1);
        double b1 = s.h.tuple("betas", 0), b2 = s.h.tuple("betas", 1), b3 = s.h.tuple("betas", 2);
        boolean factored = AdafactorRule.factored(g.shape());
        Tensor u = delta; // built in place; the confidence-scaled update overwrites it at the end
        s.ops.unary(UnaryOp.SQUARE, g, u);
        s.ops.binaryScalar(BinaryOp.ADD, u, eps1, u);
        if (factored) {
            Tensor row = s.state.get("exp_avg_sq_row"), col = s.state.get("exp_avg_sq_col");
            s.factoredEma(row, col, u, b2);
            s.factoredScale(row, col, g, u);
        } else {
            Tensor v = s.state.get("exp_avg_sq");
            s.ema(v, b2, u);
            s.ops.unary(UnaryOp.RSQRT, v, u);
            s.ops.binary(BinaryOp.MUL, u, g, u);
        }
        s.clipByRms(u, s.h.d("clip_threshold"));
        Tensor m = s.state.get("exp_avg");
        s.ema(m, b1, u);
        if (factored) {
            Tensor res = s.tmp(g.shape());
            s.ops.binary(BinaryOp.SUB, u, m, res);
            s.ops.unary(UnaryOp.SQUARE, res, res);
            s.ops.binaryScalar(BinaryOp.ADD, res, eps2, res);
            Tensor rr = s.state.get("exp_avg_res_row"), rc = s.state.get("exp_avg_res_col");
            s.factoredEma(rr, rc, res, b3);
            s.factoredScale(rr, rc, m, delta);
        } else {
            s.ops.copy(m, delta);
        }
        s.ops.binaryScalar(BinaryOp.MUL, delta, s.lr, delta);
        double wd = s.h.d("weight_decay");
        return wd != 0 ? Decay.before(w -> s.ops.axpby(1, w, -wd * s.lr, w, w)) : Decay.NONE;
    }
}
