package dev.tally.models.loss;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * When no tile can be filtered (a near-uniform softmax, as at initialisation), host-side filtering skips sorting and the
 * per-tile test: the results are then exactly those of the unfiltered, unsorted loss with the same tiles; the device-side
 * filter, which always tests every tile, confirms that none was small; and where tiles can be small the filter still
 * skips them.
 */
class CceNothingToFilterTest {
    private record Run(float[] de, float[] dc, float loss, CutCrossEntropy.FilterStats stats) {}

    private static Run run(CutCrossEntropy cce, double eScale, double cScale, int n, int d, int v) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, Device.CPU, 8L << 20);
             MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 8L << 20)) {
            SplittableRandom r = new SplittableRandom(21);
            double[] e = new double[n * d], c = new double[v * d];
            for (int i = 0; i < e.length; i++) e[i] = r.nextGaussian() * eScale;
            for (int i = 0; i < c.length; i++) c[i] = r.nextGaussian() * cScale;
            long[] t = new long[n];
            for (int i = 0; i < n; i++) t[i] = i % 5 == 0 ? LinearCrossEntropy.IGNORE_INDEX : r.nextInt(v);
            Tensor et = in.allocate("e", DType.F32, n, d).copyFrom(e), ct = in.allocate("c", DType.F32, v, d).copyFrom(c);
            Tensor tt = in.allocate("t", DType.I64, n).copyFrom(t), l = in.allocate("l", DType.F32, 1);
            Tensor g = in.allocate("g", DType.F32, 1).copyFrom(new float[] {1});
            Tensor de = in.allocate("de", DType.F32, n, d), dc = in.allocate("dc", DType.F32, v, d);
            dc.ops().fill(dc, 0); // backward adds the classifier's gradient into dC
            cce.backward(cce.forward(et, ct, tt, l, ws), g, de, dc, ws);
            return new Run(de.toFloatArray(), dc.toFloatArray(), (float) l.item(), cce.filterStats());
        }
    }

    private static CutCrossEntropy cce(boolean filter) {
        return new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, filter, filter, filter, Double.NaN));
    }

    @Test
    void nearUniformSoftmaxGivesTheUnfilteredResultsExactly() {
        int n = 64, d = 16, v = 300;
        Run filtered = run(cce(true).deviceSideFiltering(false), 1, 0.1, n, d, v);
        Run plain = run(cce(false), 1, 0.1, n, d, v);
        assertArrayEquals(plain.de(), filtered.de(), "dE: natural order, every product");
        assertArrayEquals(plain.dc(), filtered.dc(), "dC: natural order, every product");
        assertEquals(plain.loss(), filtered.loss());
        assertEquals(new CutCrossEntropy.FilterStats(40, 0, 0), filtered.stats());
        // the device-side filter tests every tile (in sorted order): none was small
        Run tested = run(cce(true).deviceSideFiltering(true).countingGatedTiles(true), 1, 0.1, n, d, v);
        assertEquals(new CutCrossEntropy.FilterStats(40, 0, 0), tested.stats());
    }

    /**
     * Without a filter the loss multiplies the mask by the scale once instead of every tile by it; a device-side filter
     * (natural order, nothing small) still scales each tile: the same bits.
     */
    @Test
    void theScaleInTheRowScaleGivesTheBitsOfTheScaleOnEveryTile() {
        int n = 64, d = 16, v = 300;
        CutCrossEntropy perTile = new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, true, true, false, Double.NaN))
                .deviceSideFiltering(true).countingGatedTiles(true);
        Run tiles = run(perTile, 1, 0.1, n, d, v);
        Run rows = run(cce(false), 1, 0.1, n, d, v);
        assertEquals(new CutCrossEntropy.FilterStats(40, 0, 0), tiles.stats(), "no tile small: every product made");
        assertArrayEquals(rows.de(), tiles.de(), "dE");
        assertArrayEquals(rows.dc(), tiles.dc(), "dC");
    }

    @Test
    void peakedSoftmaxStillFilters() {
        int n = 64, d = 16, v = 300;
        Run filtered = run(cce(true).deviceSideFiltering(false), 6, 3, n, d, v); // logits in the hundreds
        Run tested = run(cce(true).deviceSideFiltering(true).countingGatedTiles(true), 6, 3, n, d, v);
        assertTrue(filtered.stats().skippedE() > 0, filtered.stats().toString());
        assertEquals(tested.stats(), filtered.stats(), "the host filter tests tiles as the device filter does");
        assertArrayEquals(tested.de(), filtered.de());
    }
}
