package dev.tally.optim;

import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.List;

/**
 * The element-wise part of an optimizer, in whatever space it is given (the full gradient, or GaLore's projected one):
 * it computes the delta to subtract — learning rate and bias correction included — and applies weight decay where its
 * reference implementation does (before or after the update, in its own form).
 */
interface Rule {
    /** State tensors for a gradient of this shape (the rule's own space). */
    List<StateSpec> specs(Shape gradShape);

    /** delta ← the update for gradient {@code g}; state advances. {@code step.t()} is already the new step number. */
    void direction(Step step, Tensor g, Tensor delta);

    /** Weight decay applied before the update (after {@link #direction}, which may have computed a data-dependent lr). */
    default void decayBefore(Step step, Tensor w) {}

    /** Weight decay applied after the update. */
    default void decayAfter(Step step, Tensor w) {}
}
