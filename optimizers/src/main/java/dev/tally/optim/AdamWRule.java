package dev.tally.optim;

import dev.tally.engine.AdamStep;
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

    /** This step's scalars, folded for {@link dev.tally.engine.Ops#adamStep}: the one place both paths take them from. */
    private AdamStep scalars(Step s) {
        double b1 = s.h.tuple("betas", 0), b2 = s.h.tuple("betas", 1), eps = s.h.d("eps"), wd = s.h.d("weight_decay");
        double bc1 = 1 - Math.pow(b1, s.t()), bc2 = 1 - Math.pow(b2, s.t());
        if (flavor == Flavor.TORCH) {
            return new AdamStep(b1, b2, eps, Math.sqrt(bc2), s.lr / bc1, wd != 0 ? 1 - s.lr * wd : 1, 0);
        }
        double stepSize = s.h.b("correct_bias") ? s.lr * Math.sqrt(bc2) / bc1 : s.lr;
        return new AdamStep(b1, b2, eps, 1, stepSize, 1, wd > 0 ? -s.lr * wd : 0);
    }

    /** The full-rank update as one fused op (the CPU reads each element once instead of ten passes). */
    @Override public boolean update(Step s, Tensor w, Tensor g, Tensor scratch) {
        s.ops.adamStep(scalars(s), w, g, s.state.get("exp_avg"), s.state.get("exp_avg_sq"), scratch);
        return true;
    }

    /** The same arithmetic as {@link dev.tally.engine.Ops#adamStep}'s definition, leaving the step in delta (GaLore, APOLLO). */
    @Override public Decay direction(Step s, Tensor g, Tensor delta) {
        AdamStep a = scalars(s);
        Tensor m = s.state.get("exp_avg"), v = s.state.get("exp_avg_sq");
        s.ema(m, a.beta1(), g);
        // delta doubles as scratch: g², then the denominator, then the update — no temporary of the parameter's size
        s.ops.unary(UnaryOp.SQUARE, g, delta);
        s.ema(v, a.beta2(), delta);
        s.ops.unary(UnaryOp.SQRT, v, delta);
        if (a.denominatorDivisor() != 1) s.ops.binaryScalar(BinaryOp.DIV, delta, a.denominatorDivisor(), delta);
        s.ops.binaryScalar(BinaryOp.ADD, delta, a.eps(), delta);
        s.ops.binary(BinaryOp.DIV, m, delta, delta);
        s.ops.binaryScalar(BinaryOp.MUL, delta, a.stepSize(), delta);
        if (a.decayBefore() != 1) return Decay.before(w -> s.ops.binaryScalar(BinaryOp.MUL, w, a.decayBefore(), w));
        if (a.decayAfter() != 0) return Decay.after(w -> s.ops.axpby(1, w, a.decayAfter(), w, w));
        return Decay.NONE;
    }
}
