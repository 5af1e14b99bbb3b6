package dev.tally.optim;

import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.List;
import java.util.function.Consumer;

/**
 * The element-wise part of an optimizer, in whatever space it is given (the full gradient, or GaLore's projected one):
 * it computes the delta to subtract — learning rate and bias correction included — and says how weight decay is applied
 * around the update, in its reference implementation's form. Rules hold no per-step state: what the decay needs from the
 * step (a data-dependent learning rate, a mask of finite gradient elements) travels in the returned {@link Decay}.
 */
interface Rule {
    /** State tensors for a gradient of this shape (the rule's own space) under these hyperparameters. */
    List<StateSpec> specs(Shape gradShape, Hyper h);

    /** delta ← the update for gradient {@code g}; state advances. {@code step.t()} is already the new step number. */
    Decay direction(Step step, Tensor g, Tensor delta);

    /**
     * The whole update of a full-rank weight in one op — decay, state and weight — for rules with a fused op; returns
     * false when the caller is to use {@link #direction} and its {@link Decay} instead. Must give the same bits as that
     * path. {@code scratch} is a weight-shaped F32 workspace tensor.
     */
    default boolean update(Step step, Tensor w, Tensor g, Tensor scratch) { return false; }

    /** Weight decay of one update: applied to the weight before the delta is subtracted, and after it. */
    record Decay(Consumer<Tensor> before, Consumer<Tensor> after) {
        static final Decay NONE = new Decay(w -> {}, w -> {});

        static Decay before(Consumer<Tensor> before) { return new Decay(before, w -> {}); }

        static Decay after(Consumer<Tensor> after) { return new Decay(w -> {}, after); }
    }
}
