package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.List;
import java.util.Map;

/**
 * The update of a weight stored as int8 codes (Q-GaLore / Q-APOLLO): W = (q − z)·s into an fp32 workspace buffer, the
 * method's own step on W (projection, moments, W ← W − lr·Ĝ, then weight decay — the wrapped updater, unchanged), then
 * re-quantization with s and z refitted from the new per-group min and max and stochastic rounding (or round to nearest
 * with {@code stochastic_round=false}).
 *
 * <p>Deliberate deviation: the references do this arithmetic in bf16 (the gradient's dtype), where for |u| ≥ 128 no
 * fractional part survives and updates smaller than about s/4 vanish, and torch.rand_like in bf16 has 256 levels. Tally
 * does it in fp32 with r from the Philox stream, keyed by the parameter's name and the optimizer's {@code seed} and
 * offset by the step, so a run (and a resumed run) is reproducible bit for bit.
 */
final class QuantizedWeightUpdater implements Updater {
    private final Updater inner;
    private final boolean stochastic;
    private final long seed;

    private QuantizedWeightUpdater(Updater inner, boolean stochastic, long seed) {
        this.inner = inner;
        this.stochastic = stochastic;
        this.seed = seed;
    }

    /** Hyperparameters the q_* methods add to their base method's. */
    static void defaults(OptimizerKind kind, Map<String, Object> d) {
        d.put("stochastic_round", true);
        d.put("seed", 0L);
        if (kind == OptimizerKind.Q_GALORE_ADAMW8BIT) QGaloreUpdater.defaults(d);
    }

    /**
     * Weights stored as int8 codes need a q_* method, the only ones that re-quantize after the update; in any group,
     * projected or not (a plain group's rule is wrapped the same way). {@code where} names the group for the message.
     */
    static void validate(OptimizerKind kind, List<Parameter> params, String where) {
        if (kind.updatesQuantizedWeights()) return;
        for (Parameter p : params) {
            if (p.isQuantized()) {
                throw new IllegalArgumentException(kind.userName() + " cannot update " + p + " (" + where + "): int8 weights need "
                        + "q_apollo, q_apollo_mini or q_galore_adamw8bit (or --weight-bits 16)");
            }
        }
    }

    static Updater wrapIfQuantized(Parameter p, Updater base, Hyper h) {
        if (!p.isQuantized()) return base;
        return new QuantizedWeightUpdater(base, h.b("stochastic_round"), h.keys().contains("seed") ? (long) h.d("seed") : 0);
    }

    /** A META parameter with {@code p}'s storage format, for the workspace dry run. */
    static Parameter metaTwin(Parameter p, MemoryArena meta) {
        if (!p.isQuantized()) return new Parameter(p.name(), meta.allocate("w", p.value().dtype(), p.value().shape()), p.role());
        QuantizedTensor q = p.quantized();
        return new Parameter(p.name(), QuantizedTensor.allocate(meta, "w", q.shape(), q.bits(), q.groupSize()), p.dtype(), p.role());
    }

    @Override public List<StateSpec> specs(Shape paramShape) { return inner.specs(paramShape); }

    @Override public void update(Step s, Parameter p, Tensor codes, Tensor g) {
        QuantizedTensor q = p.quantized();
        Tensor w = s.workspace.allocate("optimizer.dequantized_weight", DType.F32, q.shape());
        q.dequantize(w);
        inner.update(new Step(s.ops, s.workspace, s.h, s.lr, s.state, w, s.codes, s.projections), p, w, g);
        q.quantize(w, stochastic ? new GroupRounding.Philox(roundingKey(p.name()), (s.state.step - 1) * ((q.numel() + 3) / 4))
                : GroupRounding.NEAREST);
        s.workspace.free(w);
    }

    /** The Philox key of a parameter's rounding stream: its name (String.hashCode is specified) mixed with the seed. */
    private long roundingKey(String name) {
        return ApolloUpdater.nextSeed(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
    }
}
