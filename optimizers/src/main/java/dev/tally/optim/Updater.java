package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.List;

/** How one parameter is updated: which state it needs and the update itself (plain, GaLore-projected, or APOLLO). */
sealed interface Updater permits Updater.Plain, GaloreUpdater, ApolloUpdater, QuantizedWeightUpdater, QGaloreUpdater {
    List<StateSpec> specs(Shape paramShape);

    /** One step; {@code grad} is the parameter's full gradient. Increments {@code step.state.step}. */
    void update(Step step, Parameter p, Tensor weight, Tensor grad);

    /** The rule applied to the full gradient. */
    record Plain(Rule rule, List<StateSpec> specs) implements Updater {
        @Override public List<StateSpec> specs(Shape paramShape) { return specs; }

        @Override public void update(Step s, Parameter p, Tensor w, Tensor g) {
            s.state.step++;
            Tensor delta = s.tmp(w.shape());
            if (rule.update(s, w, g, delta)) return;
            Rule.Decay decay = rule.direction(s, g, delta);
            decay.before().accept(w);
            s.ops.axpby(1, w, -1, delta, w);
            decay.after().accept(w);
        }
    }
}
