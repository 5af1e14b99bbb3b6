package dev.tally.optim;

import dev.tally.autograd.Parameter;

/**
 * Where projection matrices come from. By default optimizers compute them (GaLore: SVD of the gradient; APOLLO: Gaussian
 * from a per-parameter seed). Tests replaying reference trajectories supply the reference's own matrices instead,
 * because neither SVD signs nor PyTorch's RNG stream can be reproduced bit for bit.
 */
@FunctionalInterface
interface Projections {
    /**
     * The matrix to use from the {@code refresh}-th refresh (0-based) of {@code p}: GaLore right basis [r, n] or left
     * basis [m, r]; APOLLO P with the same layout. Values row-major; null means "compute it as usual".
     */
    float[] supplied(Parameter p, int refresh);

    Projections COMPUTED = (p, refresh) -> null;
}
