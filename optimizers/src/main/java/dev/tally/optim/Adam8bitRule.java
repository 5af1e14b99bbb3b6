package dev.tally.optim;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.util.List;

/**
 * 8-bit AdamW as bitsandbytes' block-wise optimizer kernel computes it: both moments stored as uint8 codes of the
 * dynamic maps (signed for m, unsigned for v) with one fp32 absmax per block of 256; each step dequantizes, updates in
 * fp32, and requantizes with the new absmax (nearest code). Gradient elements that are NaN/inf zero their states and
 * leave the weight untouched. Parameters with fewer than min_8bit_size elements keep fp32 moments (same math).
 * Weight decay: W ← W·(1 − lr·wd) after the update (plain), or GaLore's W ← W − lr·wd·W after the back-projection.
 */
final class Adam8bitRule implements Rule {
    static final int BLOCK = 256;

    private final boolean underGalore;

    /** {@code underGalore}: GaLore's weight decay form (unmasked, after the back-projection) instead of bitsandbytes'. */
    Adam8bitRule(boolean underGalore) {
        this.underGalore = underGalore;
    }

    static boolean quantized(Shape g, Hyper h) { return g.numel() >= h.i("min_8bit_size"); }

    @Override public List<StateSpec> specs(Shape g, Hyper h) {
        if (!quantized(g, h)) {
            return List.of(new StateSpec("exp_avg", DType.F32, g, StateSpec.Kind.MOMENT),
                    new StateSpec("exp_avg_sq", DType.F32, g, StateSpec.Kind.MOMENT));
        }
        int n = Math.toIntExact(g.numel());
        Shape blocks = Shape.of((n + BLOCK - 1) / BLOCK);
        return List.of(new StateSpec("state1", DType.U8, Shape.of(n), StateSpec.Kind.QUANTIZED),
                new StateSpec("state2", DType.U8, Shape.of(n), StateSpec.Kind.QUANTIZED),
                new StateSpec("absmax1", DType.F32, blocks, StateSpec.Kind.ABSMAX),
                new StateSpec("absmax2", DType.F32, blocks, StateSpec.Kind.ABSMAX));
    }

    @Override public Decay direction(Step s, Tensor g, Tensor delta) {
        double b1 = s.h.tuple("betas", 0), b2 = s.h.tuple("betas", 1), eps = s.h.d("eps");
        boolean q = quantized(g.shape(), s.h);
        int n = Math.toIntExact(g.numel());
        Tensor gf = g.isContiguous() ? g.reshape(n) : copyFlat(s, g);
        Tensor s1, s2;
        if (q) {
            s1 = s.tmp(n);
            s2 = s.tmp(n);
            s.ops.dequantizeBlockwise(s.state.get("state1"), s.codes.signed(), s.state.get("absmax1"), s1, BLOCK);
            s.ops.dequantizeBlockwise(s.state.get("state2"), s.codes.unsigned(), s.state.get("absmax2"), s2, BLOCK);
        } else {
            s1 = s.state.get("exp_avg").reshape(n);
            s2 = s.state.get("exp_avg_sq").reshape(n);
        }
        Tensor zero = s.tmp(1);
        s.ops.fill(zero, 0);
        Tensor finite = s.tmp(n); // 1 where the gradient element is finite: only those move (states and weight)
        s.ops.unary(UnaryOp.ISFINITE, gf, finite);
        Tensor g0 = s.tmp(n);
        s.ops.where(finite, gf, zero, g0);
        Tensor d = delta.isContiguous() ? delta.reshape(n) : s.tmp(n); // scratch for g², then the update
        s.ops.unary(UnaryOp.SQUARE, g0, d);
        s.ema(s2, b2, d);
        s.ema(s1, b1, g0);
        s.ops.where(finite, s1, zero, s1);
        s.ops.where(finite, s2, zero, s2);
        double c1 = 1 - Math.pow(b1, s.t()), c2 = Math.sqrt(1 - Math.pow(b2, s.t()));
        s.ops.unary(UnaryOp.SQRT, s2, d);
        s.ops.binaryScalar(BinaryOp.ADD, d, c2 * eps, d);
        s.ops.binary(BinaryOp.DIV, s1, d, d);
        s.ops.binaryScalar(BinaryOp.MUL, d, s.lr * c2 / c1, d);
        if (!delta.isContiguous()) s.ops.copy(d.reshape(delta.dims()), delta);
        if (q) {
            s.ops.quantizeBlockwise(s1, s.codes.signed(), s.state.get("absmax1"), s.state.get("state1"), BLOCK, true);
            s.ops.quantizeBlockwise(s2, s.codes.unsigned(), s.state.get("absmax2"), s.state.get("state2"), BLOCK, false);
        }
        double wd = s.h.d("weight_decay");
        if (wd <= 0) return Decay.NONE;
        if (underGalore) return Decay.after(w -> s.ops.axpby(1, w, -s.lr * wd, w, w));
        return Decay.after(w -> { // bitsandbytes decays only the elements it updated
            Tensor decayed = s.tmp(w.shape());
            s.ops.binaryScalar(BinaryOp.MUL, w, 1 - s.lr * wd, decayed);
            s.ops.where(finite.reshape(w.dims()), decayed, w, w);
        });
    }

    private static Tensor copyFlat(Step s, Tensor g) {
        Tensor c = s.tmp(g.shape());
        s.ops.copy(g, c);
        return c.reshape(Math.toIntExact(g.numel()));
    }
}
