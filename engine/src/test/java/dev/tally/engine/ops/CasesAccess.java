package dev.tally.engine.ops;

import org.junit.jupiter.params.provider.Arguments;

import java.util.stream.Stream;

/** Public door to {@link Cases} for test classes in other packages. */
public final class CasesAccess {
    private CasesAccess() {}

    public static Stream<Arguments> devices() { return Cases.devices(); }
}
