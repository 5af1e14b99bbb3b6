package dev.tally.tests.golden;

import dev.tally.engine.io.SafeTensors;

import java.util.Map;
import java.util.TreeMap;

/**
 * Metadata {@code kind} → the check that replays a golden file of that kind. A kind nobody registered fails the file:
 * an unknown kind is never a silent pass.
 */
public final class GoldenCheckers {
    /** Replays one file, throwing AssertionError on any mismatch. */
    @FunctionalInterface
    public interface Checker {
        void check(SafeTensors.File file) throws Exception;
    }

    private static final Map<String, Checker> CHECKERS = new TreeMap<>();

    static {
        register("optimizer", OptimizerGolden::check);
        register("quant_map", QuantMapGolden::check);
        register("cross_entropy", CrossEntropyGolden::check);
        register("weight_quant", WeightQuantGolden::check);
    }

    private GoldenCheckers() {}

    public static void register(String kind, Checker checker) {
        CHECKERS.put(kind, checker);
    }

    public static Checker forKind(String kind) {
        Checker c = CHECKERS.get(kind);
        if (c == null) {
            throw new AssertionError("golden file of unknown kind '" + kind + "': no checker registered (known: " + CHECKERS.keySet() + ")");
        }
        return c;
    }
}
