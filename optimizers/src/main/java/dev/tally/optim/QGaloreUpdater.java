package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.DType;
import dev.tally.engine.GroupRounding;
import dev.tally.engine.QuantizedTensor;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Q-GaLore's projection (Zhang et al. 2024): GaLore with the basis stored quantized and refreshed lazily.
 * <ul>
 * <li>At a refresh the fp32 SVD basis (right Vh[:r, :] or left U[:, :r], as {@link GaloreUpdater}) is quantized with the
 * asymmetric per-group scheme of the int8 weights — {@code proj_quant_bits} (4) bits, groups of {@code proj_quant_group}
 * (256) consecutive elements of the flattened basis, round to nearest — and every project / project-back dequantizes
 * it into a workspace buffer. Deviation: the reference keeps one 4-bit code per byte; Tally packs two per byte.</li>
 * <li>Lazy refresh: at each SVD after the first, the cosine similarity between the new and the previous first singular
 * vector (the basis' first row, right, or column, left — taken from the fp32 SVD) joins a queue of the last
 * {@code queue_size} (5); once the queue is full and its mean is ≥ {@code cos_threshold} (0.4), the gap is multiplied
 * by {@code gamma_proj} (2) — at every such refresh, as the reference does. A refresh happens when the 0-based step is a
 * multiple of the current gap.</li>
 * </ul>
 * The current gap and the queue live in the state tensor {@code lazy} = [gap, count, q0 … q(queue_size−1)] (read on the
 * host, so checkpoints carry them); the previous first vector in {@code past_vector}.
 */
final class QGaloreUpdater implements Updater {
    private final Rule inner;
    private final List<StateSpec> innerSpecs;
    private final int rank;
    private final int initialGap;
    private final double scale;
    private final int bits;
    private final int group;
    private final double cosThreshold;
    private final double gamma;
    private final int queueSize;
    private final boolean right;

    QGaloreUpdater(Rule inner, List<StateSpec> innerSpecs, Shape param, Hyper h) {
        this.inner = inner;
        this.innerSpecs = innerSpecs;
        this.rank = h.i("rank");
        this.initialGap = h.i("update_proj_gap");
        this.scale = h.d("scale");
        this.bits = h.i("proj_quant_bits");
        this.group = h.i("proj_quant_group");
        this.cosThreshold = h.d("cos_threshold");
        this.gamma = h.d("gamma_proj");
        this.queueSize = h.i("queue_size");
        this.right = param.dim(0) >= param.dim(1);
    }

    static void defaults(Map<String, Object> d) {
        d.put("proj_quant_bits", 4L);
        d.put("proj_quant_group", 256L);
        d.put("cos_threshold", 0.4);
        d.put("gamma_proj", 2.0);
        d.put("queue_size", 5L);
    }

    static void validate(Hyper h) {
        String n = h.optimizer();
        int b = h.i("proj_quant_bits");
        if (b != 4 && b != 8) throw new IllegalArgumentException(n + ": proj_quant_bits must be 4 or 8, got " + b);
        if (h.i("proj_quant_group") < 1) throw new IllegalArgumentException(n + ": proj_quant_group must be >= 1");
        if (h.i("queue_size") < 1) throw new IllegalArgumentException(n + ": queue_size must be >= 1");
        if (!(h.d("gamma_proj") >= 1)) throw new IllegalArgumentException(n + ": gamma_proj must be >= 1, got " + h.d("gamma_proj"));
    }

    @Override public List<StateSpec> specs(Shape paramShape) {
        Shape basis = GaloreUpdater.basisShape(paramShape, rank);
        int groups = Math.toIntExact(QuantizedTensor.groups(basis, group));
        List<StateSpec> s = new ArrayList<>(innerSpecs);
        s.add(new StateSpec("projection", DType.U8, Shape.of(Math.toIntExact(QuantizedTensor.codeBytes(basis, bits))), StateSpec.Kind.BASIS));
        s.add(new StateSpec("projection_scales", DType.F32, Shape.of(groups), StateSpec.Kind.BASIS));
        s.add(new StateSpec("projection_zeros", DType.F32, Shape.of(groups), StateSpec.Kind.BASIS));
        s.add(new StateSpec("past_vector", DType.F32, Shape.of(Math.min(paramShape.dim(0), paramShape.dim(1))), StateSpec.Kind.BASIS));
        s.add(new StateSpec("lazy", DType.F32, Shape.of(2 + queueSize), StateSpec.Kind.SCALAR));
        return s;
    }

    private QuantizedTensor basis(Step s, Shape param) {
        return new QuantizedTensor(GaloreUpdater.basisShape(param, rank), bits, group, s.state.get("projection"),
                s.state.get("projection_scales"), s.state.get("projection_zeros"));
    }

    @Override public void update(Step s, Parameter p, Tensor w, Tensor g) {
        QuantizedTensor qb = basis(s, w.shape());
        Tensor lazy = s.state.get("lazy");
        boolean host = w.device().hasMemory(); // META plans the refresh path; the lazy decision needs values
        float[] lz = host ? lazy.toFloatArray() : null;
        long gap = host && lz[0] > 0 ? (long) lz[0] : initialGap;
        if (s.state.step % gap == 0) {
            refresh(s, p, g, qb, lz);
            if (host) lazy.copyFrom(lz);
        }
        Tensor basis = s.tmp(qb.shape());
        qb.dequantize(basis);
        GaloreUpdater.stepInSubspace(s, inner, w, g, basis, right, rank, scale);
    }

    private void refresh(Step s, Parameter p, Tensor g, QuantizedTensor qb, float[] lz) {
        Tensor fresh = s.tmp(qb.shape());
        float[] given = s.projections.supplied(p, (int) s.state.refreshes);
        if (given != null) {
            if (given.length != fresh.numel()) {
                throw new IllegalArgumentException("supplied Q-GaLore basis for " + p.name() + " has " + given.length
                        + " values, expected " + fresh.shape());
            }
            fresh.copyFrom(given);
        } else {
            int m = g.dim(0), n = g.dim(1), k = Math.min(m, n);
            Tensor u = s.tmp(m, k), sv = s.tmp(k), vt = s.tmp(k, n);
            Tensor gf = g;
            if (g.dtype() != DType.F32) { // SVD in fp32, as the reference
                gf = s.tmp(m, n);
                s.ops.copy(g, gf);
            }
            s.ops.svd(gf, u, sv, vt);
            if (right) s.ops.copy(vt.slice(0, 0, rank), fresh); else s.ops.copy(u.slice(1, 0, rank), fresh);
        }
        Tensor first = right ? fresh.select(0, 0) : fresh.select(1, 0);
        Tensor past = s.state.get("past_vector");
        if (lz != null) {
            if (lz[0] <= 0) lz[0] = initialGap;
            if (s.state.refreshes > 0) {
                double cos = cosine(past.toDoubleArray(), first.toDoubleArray());
                int count = (int) lz[1];
                if (count == queueSize) { // drop the oldest
                    System.arraycopy(lz, 3, lz, 2, queueSize - 1);
                    count--;
                }
                lz[2 + count] = (float) cos;
                lz[1] = ++count;
                if (count == queueSize) {
                    double sum = 0;
                    for (int i = 0; i < queueSize; i++) sum += lz[2 + i];
                    if (sum / queueSize >= cosThreshold) lz[0] = (float) (long) (lz[0] * gamma);
                }
            }
        }
        s.ops.copy(first, past);
        qb.quantize(fresh, GroupRounding.NEAREST);
        s.state.refreshes++;
    }

    /** torch.nn.functional.cosine_similarity of two vectors (eps 1e-8), in double, summed in index order. */
    static double cosine(double[] a, double[] b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-8);
    }
}
