package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * GaLore (Zhao et al. 2024): the inner rule runs on the gradient projected onto a rank-r subspace spanning the smaller
 * dimension — right basis P [r, n] when m ≥ n (R = G·Pᵀ, back = R'·P), left basis P [m, r] otherwise (R = Pᵀ·G,
 * back = P·R'). The basis is the top-r singular vectors of G (fp32 SVD), refreshed when the 0-based step is a multiple
 * of update_proj_gap; moments are not reset. The back-projection is multiplied by {@code scale}.
 *
 * <p>Deviation from the reference: GaLore's project_back picks the side from the low-rank tensor's shape, which breaks
 * when r reaches the smaller dimension; here the side is fixed from the stored basis (the original shape), which is
 * what the reference intends and identical whenever the reference works.
 */
final class GaloreUpdater implements Updater {
    private final Rule inner;
    private final int rank;
    private final int gap;
    private final double scale;
    private final List<StateSpec> innerSpecs;
    private final boolean right;

    GaloreUpdater(Rule inner, List<StateSpec> innerSpecs, Shape param, int rank, int gap, double scale) {
        this.inner = inner;
        this.rank = rank;
        this.gap = gap;
        this.scale = scale;
        this.innerSpecs = innerSpecs;
        this.right = param.dim(0) >= param.dim(1);
    }

    static Shape lowRankShape(Shape param, int rank) {
        int m = param.dim(0), n = param.dim(1);
        return m >= n ? Shape.of(m, rank) : Shape.of(rank, n);
    }

    static Shape basisShape(Shape param, int rank) {
        int m = param.dim(0), n = param.dim(1);
        return m >= n ? Shape.of(rank, n) : Shape.of(m, rank);
    }

    @Override public List<StateSpec> specs(Shape paramShape) {
        List<StateSpec> s = new ArrayList<>(innerSpecs);
        s.add(new StateSpec("projection", DType.F32, basisShape(paramShape, rank), StateSpec.Kind.BASIS));
        return s;
    }

    @Override public void update(Step s, Parameter p, Tensor w, Tensor g) {
        Tensor basis = s.state.get("projection");
        if (s.state.step % gap == 0) refresh(s, p, g, basis);
        stepInSubspace(s, inner, w, g, basis, right, rank, scale);
    }

    /**
     * The GaLore step once the basis is known (shared with Q-GaLore, whose basis is dequantized first): project the
     * gradient, let {@code inner} turn it into a low-rank update, and back-project straight into the weight
     * (W ← W − scale · back(delta), no full-size temporary), with the inner rule's weight decay around it.
     */
    static void stepInSubspace(Step s, Rule inner, Tensor w, Tensor g, Tensor basis, boolean right, int rank, double scale) {
        Shape low = lowRankShape(w.shape(), rank);
        Tensor r = s.tmp(low);
        if (right) s.ops.matmul(g, basis.t(), r, 1, 0); else s.ops.matmul(basis.t(), g, r, 1, 0);
        s.state.step++;
        Tensor delta = s.tmp(low);
        Rule.Decay decay = inner.direction(s, r, delta);
        decay.before().accept(w);
        if (right) s.ops.matmul(delta, basis, w, -scale, 1); else s.ops.matmul(basis, delta, w, -scale, 1);
        decay.after().accept(w);
    }

    private void refresh(Step s, Parameter p, Tensor g, Tensor basis) {
        float[] given = s.projections.supplied(p, (int) s.state.refreshes);
        s.state.refreshes++;
        if (given != null) {
            if (given.length != basis.numel()) {
                throw new IllegalArgumentException("supplied GaLore basis for " + p.name() + " has " + given.length
                        + " values, expected " + basis.shape());
            }
            basis.copyFrom(given);
            return;
        }
        int m = g.dim(0), n = g.dim(1), k = Math.min(m, n);
        Tensor u = s.tmp(m, k), sv = s.tmp(k), vt = s.tmp(k, n);
        Tensor gf = g;
        if (g.dtype() != DType.F32) { // SVD always in fp32, as the reference does
            gf = s.tmp(m, n);
            s.ops.copy(g, gf);
        }
        s.ops.svd(gf, u, sv, vt);
        if (right) s.ops.copy(vt.slice(0, 0, rank), basis); else s.ops.copy(u.slice(1, 0, rank), basis);
    }
}
