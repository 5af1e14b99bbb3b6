package dev.tally.tests.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.optim.DynamicMap;
import dev.tally.optim.Optimizers;
import dev.tally.optim.TallyOptimizer;
import dev.tally.tests.golden.RelativeError;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 8-bit AdamW has no recorded trajectory, so it is checked against an independent host re-implementation of
 * bitsandbytes' block-wise step (spec §1.5): dequantize with the dynamic maps and per-block absmax, skip non-finite
 * gradient elements (their states become 0), update, new absmax per block of 256, requantize to the nearest code
 * (signed map: a code whose sign differs from the state's moves one step toward it), decoupled decay after.
 */
class Adam8bitReferenceTest {
    static final int BLOCK = 256;

    private static int nearest(float[] code, float v) {
        int best = 0;
        for (int i = 1; i < 256; i++) if (Math.abs(code[i] - v) < Math.abs(code[best] - v)) best = i;
        return best;
    }

    @Test
    void matchesAnIndependentReimplementationOfTheBitsandbytesStep() {
        int n = 5000; // 20 blocks, the last one partial; above min_8bit_size = 4096 so states are 8-bit
        double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 1e-2;
        float[] q1 = DynamicMap.create(true), q2 = DynamicMap.create(false);
        SplittableRandom r = new SplittableRandom(4);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) (r.nextGaussian() * 0.1);
        int[] c1 = new int[n], c2 = new int[n];
        int zero1 = nearest(q1, 0f), zero2 = nearest(q2, 0f);
        java.util.Arrays.fill(c1, zero1);
        java.util.Arrays.fill(c2, zero2);
        float[] a1 = new float[(n + BLOCK - 1) / BLOCK], a2 = new float[a1.length];

        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena arena = new MemoryArena(ledger, "w", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
            Tensor wt = arena.allocate("w", DType.F32, n).copyFrom(w), gt = arena.allocate("g", DType.F32, n);
            Parameter p = new Parameter("w", wt);
            p.setGrad(gt);
            TallyOptimizer opt = Optimizers.create("adamw8bit", Map.of("lr", lr, "weight_decay", wd, "eps", eps), List.of(p));
            opt.allocateState(ledger);
            for (int t = 1; t <= 4; t++) {
                float[] g = new float[n];
                for (int i = 0; i < n; i++) g[i] = (float) r.nextGaussian();
                if (t == 2) { g[7] = Float.NaN; g[4100] = Float.POSITIVE_INFINITY; }
                gt.copyFrom(g);
                opt.step();
                // reference step
                float[] s1 = new float[n], s2 = new float[n];
                boolean[] finite = new boolean[n];
                double c1f = 1 - Math.pow(b1, t), c2f = Math.sqrt(1 - Math.pow(b2, t));
                for (int i = 0; i < n; i++) {
                    float m = q1[c1[i]] * a1[i / BLOCK], v = q2[c2[i]] * a2[i / BLOCK];
                    finite[i] = Float.isFinite(g[i]);
                    if (finite[i]) {
                        v = (float) (b2 * v + (1 - b2) * g[i] * g[i]);
                        m = (float) (b1 * m + (1 - b1) * g[i]);
                        w[i] = (float) (w[i] - lr * c2f / c1f * m / (Math.sqrt(v) + c2f * eps));
                        w[i] = (float) (w[i] * (1 - lr * wd));
                    } else {
                        m = 0;
                        v = 0;
                    }
                    s1[i] = m;
                    s2[i] = v;
                }
                for (int b = 0; b < a1.length; b++) {
                    float m1 = 0, m2 = 0;
                    for (int i = b * BLOCK; i < Math.min(n, (b + 1) * BLOCK); i++) {
                        m1 = Math.max(m1, Math.abs(s1[i]));
                        m2 = Math.max(m2, Math.abs(s2[i]));
                    }
                    a1[b] = m1;
                    a2[b] = m2;
                    for (int i = b * BLOCK; i < Math.min(n, (b + 1) * BLOCK); i++) {
                        int k = nearest(q1, m1 == 0 ? 0 : s1[i] / m1);
                        if (s1[i] != 0 && (q1[k] < 0) != (s1[i] < 0)) k += s1[i] > 0 ? 1 : -1;
                        c1[i] = k;
                        c2[i] = nearest(q2, m2 == 0 ? 0 : s2[i] / m2);
                    }
                }
                float[] got = wt.toFloatArray();
                double err = RelativeError.between(got, w).value();
                assertTrue(err < 1e-5, "step " + t + ": relative error " + err);
                if (t == 2) assertEquals(w[7], got[7], 0.0, "a NaN gradient element leaves its weight untouched this step");
            }
            Map<String, Tensor> sd = opt.stateDict().tensors();
            long[] codes = sd.get("w.state1").toLongArray();
            int mismatches = 0;
            for (int i = 0; i < n; i++) if (codes[i] != c1[i]) mismatches++;
            assertTrue(mismatches <= n / 1000, "first-moment codes agree with the reference (" + mismatches + " of " + n + " differ at a rounding tie)");
        }
    }
}
