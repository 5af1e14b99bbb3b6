package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.Shape;

import java.util.List;

/**
 * One parameter's place in the optimizer, built once when its group is added: its group, how it is updated (derived from
 * the group's hyperparameters and the parameter's shape) and its state.
 */
final class Slot {
    final Parameter param;
    final ParamState state = new ParamState();
    private Group group;
    private Updater updater;

    Slot(Parameter param, Group group, OptimizerKind kind, long seed) {
        this.param = param;
        this.state.seed = seed;
        rebind(group, kind);
    }

    Group group() { return group; }
    Updater updater() { return updater; }
    Shape shape() { return param.value().shape(); }
    List<StateSpec> specs() { return updater.specs(shape()); }

    /** Follows its group to new hyperparameters (a loaded state dict's); the state is kept. */
    void rebind(Group g, OptimizerKind kind) {
        this.group = g;
        this.updater = kind.updater(g.hyper(), param, g.projected());
    }
}
