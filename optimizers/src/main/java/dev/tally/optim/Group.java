package dev.tally.optim;

import dev.tally.autograd.Parameter;

import java.util.List;

/** A parameter group as the optimizer holds it: the user's {@link ParamGroup} with its hyperparameters resolved and checked. */
record Group(int index, String name, List<Parameter> params, boolean projected, Hyper hyper) {
    /** "group 1 (no_decay)": how messages name it. */
    String label() { return "group " + index + (name.isEmpty() ? "" : " (" + name + ")"); }

    Group withHyper(Hyper h) { return new Group(index, name, params, projected, h); }
}
