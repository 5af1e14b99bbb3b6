package dev.tally.optim;

import dev.tally.autograd.Parameter;

import java.util.function.BiFunction;

/**
 * The golden replays' way to the optimizer's package-private projection hook. It sits in the optimizers' package but in
 * the tests' jar: on the class path (where the tests run) both jars share that runtime package; a library user on the
 * module path cannot reach it, since the module owns the package.
 */
public final class ReplayAccess {
    private ReplayAccess() {}

    /** Makes {@code opt} use {@code supplied(parameter, refresh)} (null: compute as usual) instead of its own projections. */
    public static void supplyProjections(TallyOptimizer opt, BiFunction<Parameter, Integer, float[]> supplied) {
        opt.withProjections(supplied::apply);
    }
}
