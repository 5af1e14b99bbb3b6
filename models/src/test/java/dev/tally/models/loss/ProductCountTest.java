package dev.tally.models.loss;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.profile.OpProfile;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What the README gives as the reason Cut Cross-Entropy costs about 4/3 of the materialized CE on the CPU: forward and
 * backward of CE make three N·D·V products (logits, dE, dC), CCE four (the logits once for the log-sum-exp and again in
 * backward, then dE and dC), and nothing else of that size — counted from the matmuls each one issues (the profiler's
 * flop count per op), at initialisation-like scales where no tile can be filtered.
 */
class ProductCountTest {
    private static long matmulFlops(LinearCrossEntropy f, int n, int d, int v) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, Device.CPU, 8L << 20);
             MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 8L << 20)) {
            SplittableRandom r = new SplittableRandom(3);
            double[] e = new double[n * d], c = new double[v * d];
            for (int i = 0; i < e.length; i++) e[i] = r.nextGaussian();
            for (int i = 0; i < c.length; i++) c[i] = r.nextGaussian() * 0.02;
            long[] t = new long[n];
            for (int i = 0; i < n; i++) t[i] = r.nextInt(v);
            Tensor et = in.allocate("e", DType.F32, n, d).copyFrom(e), ct = in.allocate("c", DType.F32, v, d).copyFrom(c);
            Tensor tt = in.allocate("t", DType.I64, n).copyFrom(t), l = in.allocate("l", DType.F32, 1);
            Tensor g = in.allocate("g", DType.F32, 1).copyFrom(new float[] {1});
            Tensor de = in.allocate("de", DType.F32, n, d), dc = in.allocate("dc", DType.F32, v, d);
            dc.ops().fill(dc, 0);
            OpProfile p = new OpProfile();
            try (AutoCloseable on = Backends.profile(Device.CPU, p)) {
                f.backward(f.forward(et, ct, tt, l, ws), g, de, dc, ws);
            }
            return p.entries().stream().filter(x -> x.op.startsWith("matmul")).mapToLong(OpProfile.Entry::flops).sum();
        } catch (Exception ex) {
            throw new IllegalStateException(ex);
        }
    }

    @Test
    void cceMakesFourLogitSizedProductsWhereCeMakesThree() {
        int n = 96, d = 32, v = 700;
        long product = 2L * n * d * v;
        assertEquals(3 * product, matmulFlops(new CrossEntropy(), n, d, v), "CE: logits, dE, dC");
        CutCrossEntropy cce = new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT);
        assertEquals(4 * product, matmulFlops(cce, n, d, v), "CCE: logits twice, dE, dC (nothing filtered: " + cce.filterStats() + ")");
        assertEquals(0, cce.filterStats().skippedE());
        // the gradient in forward: the logits once, dE and dC while the row block is in cache — CE's three, in 3 blocks
        CutCrossEntropy fused = new CutCrossEntropy(new CutCrossEntropy.Options(32, 0, true, true, false, Double.NaN, true));
        assertEquals(3 * product, matmulFlops(fused, n, d, v), "CCE with the gradient in forward: logits, dE, dC");
        assertEquals(3 * 3, fused.filterStats().tiles(), "3 row blocks × 3 vocabulary tiles of 256: " + fused.filterStats());
    }
}
