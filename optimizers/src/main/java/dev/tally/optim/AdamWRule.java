package dev.tally.optim;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.util.List;

/**
 * Adam with decoupled weight decay, in the two flavours the literature's code uses:
 * <ul>
 * <li>{@link Flavor#TORCH} — torch.optim.AdamW: W ← W·(1 − lr·wd) before the update; eps added to sqrt(v̂).</li>
 * <li>{@link Flavor#HF} — the AdamW inside GaLore and APOLLO: eps added to sqrt of the <em>uncorrected</em> v, bias
 * correction folded into the step size (only with correct_bias), and W ← W − lr·wd·W <em>after</em> the update.</li>
 * </ul>
 */
final class AdamWRule implements Rule {
    enum Flavor { TORCH, HF }

    private final Flavor flavor;

    AdamWRule(Flavor flavor) {
        this.flavor = flavor;
    }

    @Override public List<StateSpec> specs(Shape g, Hyper h) {
        DType stateDtype = flavor == Flavor.TORCH ? DType.parse(h.s("state_dtype")) : DType.F32;
        return List.of(new StateSpec("exp_avg", stateDtype, g, StateSpec.Kind.MOMENT),
                new StateSpec("exp_avg_sq", stateDtype, g, StateSpec.Kind.MOMENT));
    }

    @Override public Decay direction(Step s, Tensor g, Tensor delta) {
        double b1 = s.h.tuple("betas", 0), b2 = s.h.tuple("betas", 1), eps = s.h.d("eps");
        Tensor m = s.state.get("exp_avg"), v = s.state.get("exp_avg_sq");
        s.ema(m, b1, g);
        // delta doubles as scratch: g², then the denominator, then the update — no temporary of the parameter's size
        s.ops.unary(UnaryOp.SQUARE, g, delta);
        s.ema(v, b2, delta);
        double bc1 = 1 - Math.pow(b1, s.t()), bc2 = 1 - Math.pow(b2, s.t());
        s.ops.unary(UnaryOp.SQRT, v, delta);
        double stepSize;
        if (flavor == Flavor.TORCH) {
            s.ops.binaryScalar(BinaryOp.DIV, delta, Math.sqrt(bc2), delta);
            stepSize = s.lr / bc1;
        } else {
            stepSize = s.h.b("correct_bias") ? s.lr * Math.sqrt(bc2) / bc1 : s.lr;
        }
        s.ops.binaryScalar(BinaryOp.ADD, delta, eps, delta);
        s.ops.binary(BinaryOp.DIV, m, delta, delta);
        s.ops.binaryScalar(BinaryOp.MUL, delta, stepSize, delta);
        double wd = s.h.d("weight_decay");
        if (flavor == Flavor.TORCH && wd != 0) return Decay.before(w -> s.ops.binaryScalar(BinaryOp.MUL, w, 1 - s.lr * wd, w));
        if (flavor == Flavor.HF && wd > 0) return Decay.after(w -> s.ops.axpby(1, w, -s.lr * wd, w, w));
        return Decay.NONE;
    }
}
