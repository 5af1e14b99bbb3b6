package dev.tally.tests.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;
import dev.tally.optim.TallyOptimizer;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Q-GaLore's projection: the basis is stored as packed 4-bit codes, and the lazy refresh doubles the gap once the mean
 * cosine similarity of consecutive first singular vectors over a queue of 5 refreshes reaches 0.4.
 */
class QGaloreProjectionTest {

    /** Runs {@code steps} steps with gap 1; returns {refreshes, current gap}. */
    private static long[] run(boolean sameGradient, int steps, Map<String, Tensor>[] stateOut) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena a = new MemoryArena(ledger, "w", MemoryCategory.WEIGHTS, Device.CPU, 1 << 20)) {
            Tensor w = a.allocate("w", DType.F32, 96, 64), g = a.allocate("g", DType.F32, 96, 64);
            SplittableRandom r = new SplittableRandom(5);
            double[] v = new double[96 * 64];
            for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * 0.02;
            w.copyFrom(v);
            Parameter p = new Parameter("layers.0.mlp.up_proj.weight", w);
            p.setGrad(g);
            TallyOptimizer o = Optimizers.create(OptimizerKind.Q_GALORE_ADAMW8BIT,
                    Map.of("rank", 8L, "update_proj_gap", 1L, "lr", 1e-3), List.of(p), List.of());
            o.allocateState(ledger);
            for (int s = 0; s < steps; s++) {
                if (s == 0 || !sameGradient) {
                    for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian();
                    g.copyFrom(v);
                }
                o.step();
            }
            Map<String, Tensor> state = o.stateDict().tensors();
            // the dict's counters: per parameter [step, refreshes, seed]
            long refreshes = ((Number) ((List<?>) Json.parseObject(o.stateDict().metadata().get("counters")).get(p.name())).get(1)).longValue();
            long gap = (long) state.get(p.name() + ".lazy").toFloatArray()[0];
            assertEquals(8 * 64 / 2, state.get(p.name() + ".projection").numel(), "rank-8 × 64 basis: two 4-bit codes a byte");
            assertEquals(DType.U8, state.get(p.name() + ".projection").dtype());
            assertEquals(2, state.get(p.name() + ".projection_scales").numel(), "512 values in groups of 256");
            o.close();
            return new long[] {refreshes, gap};
        }
    }

    @SuppressWarnings("unchecked")
    @Test
    void aStableSubspaceDoublesTheGap() {
        // the same gradient every step: every cosine is 1. Refreshes at steps 0..5 fill the queue (5 cosines) → gap 2;
        // step 6 refreshes → gap 4; step 8 → gap 8; steps 7 and 9 do not refresh.
        long[] stable = run(true, 10, new Map[1]);
        assertEquals(8, stable[0], "refreshes");
        assertEquals(8, stable[1], "gap");
    }

    @SuppressWarnings("unchecked")
    @Test
    void aWanderingSubspaceKeepsTheGap() {
        // independent Gaussian gradients: first singular vectors are nearly orthogonal (|cos| ~ 1/8), the mean stays < 0.4
        long[] wandering = run(false, 10, new Map[1]);
        assertEquals(10, wandering[0], "refreshes");
        assertEquals(1, wandering[1], "gap");
    }
}
