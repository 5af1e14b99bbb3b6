package dev.tally.engine;

/**
 * How {@link Ops#quantizeGroups} turns u = x/s into an integer code: to nearest (half to even, as torch.round), or
 * stochastically — ⌈u⌉ when r &lt; u − ⌊u⌋, else ⌊u⌋ — with r uniform in (0, 1) either from Tally's Philox stream or
 * given element by element (golden replays inject the reference's random numbers).
 */
public sealed interface GroupRounding {
    /** Round half to even. */
    record Nearest() implements GroupRounding {}

    /**
     * Stochastic with r for flattened element i drawn as {@link Ops#random}'s UNIFORM stream draws it — lane i % 4 of
     * Philox-4x32-10 block (offset + i/4) under key seed, r = ((x &gt;&gt;&gt; 8) + 0.5)·2^-24, compared in double (not rounded
     * to a tensor's dtype): the same numbers on every backend, so a seeded run is reproducible.
     */
    record Philox(long seed, long offset) implements GroupRounding {}

    /** Stochastic with r[i] read from a tensor of x's element count (any float dtype). */
    record Given(Tensor r) implements GroupRounding {}

    GroupRounding NEAREST = new Nearest();
}
