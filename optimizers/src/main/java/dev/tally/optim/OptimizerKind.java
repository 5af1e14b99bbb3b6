package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.Shape;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The optimizers by the names users know them — one registry for the library and the CLI — with their defaults. */
public enum OptimizerKind {
    ADAMW("adamw", Projection.NONE),
    ADAFACTOR("adafactor", Projection.NONE),
    CAME("came", Projection.NONE),
    ADAMW8BIT("adamw8bit", Projection.NONE),
    GALORE_ADAMW("galore_adamw", Projection.SVD),
    GALORE_ADAFACTOR("galore_adafactor", Projection.SVD),
    GALORE_ADAMW8BIT("galore_adamw8bit", Projection.SVD),
    APOLLO("apollo", Projection.RANDOM),
    APOLLO_MINI("apollo_mini", Projection.RANDOM),
    // the Q-GaLore / Q-APOLLO variants: they also update int8 weights (dequantize, step, re-quantize stochastically)
    Q_APOLLO("q_apollo", Projection.RANDOM),
    Q_APOLLO_MINI("q_apollo_mini", Projection.RANDOM),
    Q_GALORE_ADAMW8BIT("q_galore_adamw8bit", Projection.SVD);

    /** How the method projects gradients of the matrices it targets. */
    public enum Projection { NONE, SVD, RANDOM }

    private final String userName;
    private final Projection projection;

    OptimizerKind(String userName, Projection projection) {
        this.userName = userName;
        this.projection = projection;
    }

    public String userName() { return userName; }
    public Projection projection() { return projection; }

    /** Whether this optimizer can update weights stored as int8 codes (only the q_* methods re-quantize). */
    public boolean updatesQuantizedWeights() { return this == Q_APOLLO || this == Q_APOLLO_MINI || this == Q_GALORE_ADAMW8BIT; }

    public static OptimizerKind parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        for (OptimizerKind k : values()) if (k.userName.equals(n)) return k;
        throw new IllegalArgumentException("unknown optimizer '" + name + "' (known: "
                + String.join(", ", Arrays.stream(values()).map(OptimizerKind::userName).toList()) + ")");
    }

    /** Default hyperparameters, as the reference implementations define them. */
    public Map<String, Object> defaults() {
        Map<String, Object> d = new LinkedHashMap<>();
        List<Double> adamBetas = List.of(0.9, 0.999);
        switch (this) {
            case ADAMW -> { // torch.optim.AdamW
                d.put("lr", 1e-3); d.put("betas", adamBetas); d.put("eps", 1e-8); d.put("weight_decay", 1e-2);
                d.put("amsgrad", false); d.put("maximize", false); d.put("state_dtype", "f32");
            }
            case ADAFACTOR, GALORE_ADAFACTOR -> { // HF transformers Adafactor
                d.put("lr", null); d.put("eps", List.of(1e-30, 1e-3)); d.put("clip_threshold", 1.0); d.put("decay_rate", -0.8);
                d.put("beta1", null); d.put("weight_decay", 0.0); d.put("scale_parameter", true); d.put("relative_step", true);
                d.put("warmup_init", false);
            }
            case CAME -> {
                d.put("lr", null); d.put("eps", List.of(1e-30, 1e-16)); d.put("clip_threshold", 1.0);
                d.put("betas", List.of(0.9, 0.999, 0.9999)); d.put("weight_decay", 0.0);
            }
            case ADAMW8BIT, GALORE_ADAMW8BIT, Q_GALORE_ADAMW8BIT -> { // bitsandbytes AdamW8bit / GaLoreAdamW8bit
                d.put("lr", 1e-3); d.put("betas", adamBetas); d.put("eps", 1e-8); d.put("weight_decay", 1e-2);
                d.put("min_8bit_size", 4096L);
            }
            case GALORE_ADAMW -> {
                d.put("lr", 1e-3); d.put("betas", adamBetas); d.put("eps", 1e-6); d.put("weight_decay", 0.0); d.put("correct_bias", true);
            }
            case APOLLO, APOLLO_MINI, Q_APOLLO, Q_APOLLO_MINI -> {
                d.put("lr", 1e-3); d.put("betas", adamBetas); d.put("eps", 1e-6); d.put("weight_decay", 0.0); d.put("correct_bias", true);
                d.put("scale_front", false); d.put("disable_nl", false); d.put("proj", "random");
                d.put("scale_type", this == APOLLO || this == Q_APOLLO ? "channel" : "tensor");
            }
        }
        if (updatesQuantizedWeights()) QuantizedWeightUpdater.defaults(this, d);
        if (projection != Projection.NONE) {
            boolean mini = this == APOLLO_MINI || this == Q_APOLLO_MINI;
            d.put("rank", mini ? 1L : 128L);
            d.put("update_proj_gap", 200L);
            d.put("scale", mini ? 128.0 : 1.0);
            d.put("proj_type", "std");
        }
        return d;
    }

    /** Whether the method projects the gradients of the groups marked {@code projected} (GaLore, APOLLO). */
    public boolean projects() { return projection != Projection.NONE; }

    /** Whether the method keeps 8-bit state, which needs the two dynamic code maps booked once per optimizer. */
    boolean usesCodeMaps() { return this == ADAMW8BIT || this == GALORE_ADAMW8BIT || this == Q_GALORE_ADAMW8BIT; }

    /**
     * The element-wise rule: on the full gradient, or ({@code underProjection}) on GaLore's projected one, where some
     * references apply weight decay differently.
     */
    Rule rule(boolean underProjection) {
        return switch (this) {
            case ADAMW -> new AdamWRule(AdamWRule.Flavor.TORCH);
            case GALORE_ADAMW, APOLLO, APOLLO_MINI, Q_APOLLO, Q_APOLLO_MINI -> new AdamWRule(AdamWRule.Flavor.HF);
            case ADAFACTOR, GALORE_ADAFACTOR -> new AdafactorRule();
            case CAME -> new CameRule();
            case ADAMW8BIT, GALORE_ADAMW8BIT, Q_GALORE_ADAMW8BIT -> new Adam8bitRule(underProjection);
        };
    }

    /**
     * How parameter {@code p} is updated under hyperparameters {@code h}: the plain rule, or the method's projection
     * around it; a weight stored as int8 codes gets that update wrapped in dequantize / re-quantize
     * ({@link QuantizedWeightUpdater}, which only the q_* methods accept — see {@link #updatesQuantizedWeights}).
     */
    Updater updater(Hyper h, Parameter p, boolean projected) {
        return QuantizedWeightUpdater.wrapIfQuantized(p, updater(h, p.value().shape(), projected), h);
    }

    /** The update of a floating weight of this shape (an int8 weight's codes have its shape). */
    private Updater updater(Hyper h, Shape shape, boolean projected) {
        if (!projected) {
            Rule r = rule(false);
            return new Updater.Plain(r, r.specs(shape, h));
        }
        int rank = h.i("rank"), gap = h.i("update_proj_gap");
        return switch (projection) {
            case SVD -> {
                Rule inner = rule(true);
                List<StateSpec> innerSpecs = inner.specs(GaloreUpdater.lowRankShape(shape, rank), h);
                yield this == Q_GALORE_ADAMW8BIT ? new QGaloreUpdater(inner, innerSpecs, shape, h) // int4 basis, lazy refresh
                        : new GaloreUpdater(inner, innerSpecs, shape, rank, gap, h.d("scale"));
            }
            case RANDOM -> new ApolloUpdater(rank, gap, h.s("scale_type").equals("channel"));
            case NONE -> throw new IllegalArgumentException(userName + " has no low-rank projection; use galore_* or apollo*");
        };
    }
}
