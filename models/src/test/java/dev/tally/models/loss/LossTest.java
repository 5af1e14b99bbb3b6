package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LossTest {
    /**
     * A forward + backward's loss, dE, dC, loss-arena peak and (CCE) filter statistics; {@code deWithoutDc}: dE of a
     * second backward given no dC.
     */
    private record Result(double loss, double[] de, double[] dc, long lossArenaPeak, CutCrossEntropy.FilterStats stats, double[] deWithoutDc) {}

    private static Result run(LinearCrossEntropy ce, float[] e, float[] c, long[] t, int n, int d, int v) {
        return run(ce, e, c, t, n, d, v, new float[v * d]);
    }

    /** {@code dcStart}: what the dC buffer holds before backward adds the classifier's gradient into it. */
    private static Result run(LinearCrossEntropy ce, float[] e, float[] c, long[] t, int n, int d, int v, float[] dcStart) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, Device.CPU, 8L << 20);
             MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 8L << 20)) {
            Tensor et = in.allocate("e", DType.F32, n, d).copyFrom(e), ct = in.allocate("c", DType.F32, v, d).copyFrom(c);
            Tensor tt = in.allocate("t", DType.I32, n).copyFrom(t);
            Tensor l = in.allocate("l", DType.F32, 1), g = in.allocate("g", DType.F32, 1).copyFrom(new float[] {2});
            Tensor de = in.allocate("de", DType.F32, n, d), dc = in.allocate("dc", DType.F32, v, d).copyFrom(dcStart);
            ce.backward(ce.forward(et, ct, tt, l, ws), g, de, dc, ws); // adds the classifier's gradient into dC
            assertEquals(0, ws.used(), "backward frees what forward booked");
            double loss = l.item();
            long peak = ws.highWater();
            double[] deWith = de.toDoubleArray();
            CutCrossEntropy.FilterStats stats = ce instanceof CutCrossEntropy cce ? cce.filterStats() : null;
            ce.backward(ce.forward(et, ct, tt, l, ws), g, de, null, ws);
            assertEquals(0, ws.used(), "backward with a null dC frees what forward booked");
            return new Result(loss, deWith, dc.toDoubleArray(), peak, stats, de.toDoubleArray());
        }
    }

    /**
     * backward adds the classifier's gradient into dC (the trainer passes the head's own gradient, which holds earlier
     * micro-batches' sums): onto a non-zero dC the result is that dC plus the gradient; a null dC skips the classifier's
     * products and leaves dE unchanged. For CE and every CCE path (natural order, sorted with skipped tiles, exact).
     */
    @Test
    void backwardAddsIntoDcAndSkipsItWhenNull() {
        SplittableRandom r = new SplittableRandom(17);
        int n = 37, d = 24, v = 300;
        float[] e = rand(r, n * d, 4), c = rand(r, v * d, 1); // peaky: the filtered CCE skips tiles
        long[] t = new long[n];
        for (int i = 0; i < n; i++) t[i] = i % 7 == 3 ? LinearCrossEntropy.IGNORE_INDEX : r.nextInt(v);
        float[] prior = rand(r, v * d, 0.01f);
        CutCrossEntropy.Options small = new CutCrossEntropy.Options(16, 32, true, true, true, 1e-3);
        CutCrossEntropy.Options fusedSmall = new CutCrossEntropy.Options(16, 32, true, true, false, 1e-3, true);
        for (LinearCrossEntropy f : new LinearCrossEntropy[] {new CrossEntropy(), new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT),
                new CutCrossEntropy(CutCrossEntropy.Options.EXACT), new CutCrossEntropy(small),
                new CutCrossEntropy(CutCrossEntropy.Options.FUSED), new CutCrossEntropy(fusedSmall)}) {
            Result fresh = run(f, e, c, t, n, d, v), onPrior = run(f, e, c, t, n, d, v, prior);
            double[] expected = fresh.dc.clone();
            for (int i = 0; i < expected.length; i++) expected[i] += prior[i];
            String what = f instanceof CutCrossEntropy cce ? "CCE " + cce.options() : "CE";
            assertScaledClose(onPrior.dc, expected, 1e-6, "dC added onto a non-zero dC, " + what);
            if (f instanceof CutCrossEntropy cce && (cce.options() == small || cce.options() == fusedSmall)) {
                assertTrue(onPrior.stats.skippedC() > 0, "the filter skipped tiles: " + onPrior.stats);
            }
            assertEquals(0, scaledError(onPrior.de, fresh.de), "dE does not depend on dC, " + what);
            assertEquals(0, scaledError(onPrior.deWithoutDc, fresh.de), "dE with a null dC, " + what);
        }
    }

    /** Every |actual − expected| within {@code bound} plus fp32 rounding (1e-5 of the scale), and the bound not vacuous. */
    private static void assertWithin(double[] actual, double[] expected, double bound, String what) {
        double scale = 0, err = 0;
        for (int i = 0; i < actual.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            err = Math.max(err, Math.abs(actual[i] - expected[i]));
        }
        assertTrue(bound < 0.1 * scale, what + ": bound " + bound + " should be small next to the scale " + scale);
        assertTrue(err <= bound + 1e-5 * scale, what + ": error " + err + " > bound " + bound + " + rounding");
    }

    /** max |actual − expected| / max |expected|: the error relative to the quantity's scale (gradients are ≪ 1). */
    private static double scaledError(double[] actual, double[] expected) {
        double diff = 0, scale = 0;
        for (int i = 0; i < actual.length; i++) {
            diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        return diff / scale;
    }

    private static void assertScaledClose(double[] actual, double[] expected, double tol, String what) {
        double err = scaledError(actual, expected);
        System.out.printf("  %-50s scaled error %.3e%n", what, err);
        assertTrue(err <= tol, what + ": max |diff| / max |expected| = " + err + " > " + tol);
    }

    private static float[] rand(SplittableRandom r, int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (r.nextGaussian() * scale);
        return f;
    }

    @Test
    void cutCrossEntropyMatchesMaterializedCrossEntropy() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 45, d = 12, v = 301; // primes and odd tile remainders
        float[] e = rand(r, n * d, 3), c = rand(r, v * d, 3); // |logits| in the tens: the LSE must be stable
        long[] t = new long[n];
        for (int i = 0; i < n; i++) t[i] = i % 7 == 0 ? LinearCrossEntropy.IGNORE_INDEX : r.nextInt(v);
        Result ref = run(new CrossEntropy(), e, c, t, n, d, v);
        for (CutCrossEntropy cce : new CutCrossEntropy[] {new CutCrossEntropy(CutCrossEntropy.Options.EXACT),
                new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, true, true, Double.NaN)),
                new CutCrossEntropy(CutCrossEntropy.Options.FUSED), // one block of all 45 rows
                new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, true, false, Double.NaN, true))}) { // 6 blocks, the last of 5
            Result got = run(cce, e, c, t, n, d, v);
            assertEquals(ref.loss, got.loss, 1e-5 * Math.abs(ref.loss), cce.options().toString());
            assertScaledClose(got.de, ref.de, 1e-5, "dE " + cce.options());
            assertScaledClose(got.dc, ref.dc, 1e-5, "dC " + cce.options());
            assertTrue(got.lossArenaPeak < ref.lossArenaPeak, "CCE books less loss memory than CE");
        }
        for (int i = 0; i < n; i += 7) for (int j = 0; j < d; j++) assertEquals(0.0, ref.de[i * d + j], "ignored rows get no gradient");
    }

    @Test
    void filteringSkipsNegligibleTilesAndStaysAccurate() {
        SplittableRandom r = new SplittableRandom(9);
        int n = 32, d = 8, v = 512;
        float[] e = rand(r, n * d, 1), c = rand(r, v * d, 0.1f);
        long[] t = new long[n];
        for (int i = 0; i < n; i++) t[i] = 16L * i; // one target token per row, spread over the vocabulary
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) c[(int) t[i] * d + j] = e[i * d + j] * 6; // peaked softmax
        Result ref = run(new CrossEntropy(), e, c, t, n, d, v);
        // bf16's threshold 2^-12 on fp32 inputs: most tiles hold only negligible probabilities
        CutCrossEntropy cce = new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, true, true, true, CutCrossEntropy.autoFilterEps(DType.BF16)));
        Result got = run(cce, e, c, t, n, d, v);
        CutCrossEntropy.FilterStats stats = got.stats;
        assertTrue(stats.skippedE() > stats.tiles() / 2, "most tiles skipped: " + stats);
        assertEquals(ref.loss, got.loss, 1e-5 * Math.abs(ref.loss));
        // skipped entries are below 2^-12 each, in fact ~e^-40 here: filtering costs nothing beyond fp32 rounding
        assertScaledClose(got.de, ref.de, 1e-5, "dE with bf16-threshold filtering");
        // fp32's own threshold 2^-28 (the default options on F32 inputs): off-target probabilities here are ~e^-40
        CutCrossEntropy fp32 = new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, true, true, true, Double.NaN));
        Result exact32 = run(fp32, e, c, t, n, d, v);
        assertTrue(exact32.stats.skippedE() > 0 && exact32.stats.skippedC() > 0, "fp32 eps skips tiles too: " + exact32.stats);
        assertEquals(ref.loss, exact32.loss, 1e-6 * Math.abs(ref.loss));
        assertScaledClose(exact32.de, ref.de, 1e-5, "dE with fp32 filtering");
        assertScaledClose(exact32.dc, ref.dc, 1e-5, "dC with fp32 filtering");
        // only dE filtered: dC is computed for every tile
        CutCrossEntropy onlyE = new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, true, false, true, CutCrossEntropy.autoFilterEps(DType.BF16)));
        Result gotE = run(onlyE, e, c, t, n, d, v);
        assertTrue(gotE.stats.skippedE() > 0 && gotE.stats.skippedC() == 0, gotE.stats.toString());
        assertScaledClose(gotE.dc, ref.dc, 1e-5, "dC unfiltered when only dE is filtered");
        assertScaledClose(gotE.de, ref.de, 1e-5, "dE filtered");
        // the gradient in forward: the same thresholds on the same tiles of d, visited in natural order, where a tile also
        // holds the other row block's peaked target columns — so at bf16's threshold it skips entries up to 2^-12, not
        // ~e^-40: each gradient entry may then lose up to eps · g / count times the sum of |C| (dE) or |E| (dC) over its
        // skipped terms, the bound checked below; at fp32's threshold nothing measurable is dropped
        double g = 2, count = n; // run() backpropagates dLoss = 2; every target is valid
        for (double eps : new double[] {CutCrossEntropy.autoFilterEps(DType.BF16), CutCrossEntropy.autoFilterEps(DType.F32)}) {
            for (boolean[] fe : new boolean[][] {{true, true}, {true, false}, {false, true}}) {
                CutCrossEntropy fused = new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, fe[0], fe[1], false, eps, true));
                Result f = run(fused, e, c, t, n, d, v);
                String what = "fused " + fused.options() + " " + f.stats;
                assertEquals(2 * 16, f.stats.tiles(), "2 row blocks × 16 vocabulary tiles: " + what);
                boolean coarse = eps > 1e-6;
                assertTrue(fe[0] ? f.stats.skippedE() > 0 || !coarse : f.stats.skippedE() == 0, what);
                assertTrue(fe[1] ? f.stats.skippedC() > 0 || !coarse : f.stats.skippedC() == 0, what);
                assertEquals(ref.loss, f.loss, 1e-5 * Math.abs(ref.loss), what);
                if (!coarse) {
                    assertScaledClose(f.de, ref.de, 1e-5, "dE, " + what);
                    assertScaledClose(f.dc, ref.dc, 1e-5, "dC, " + what);
                    continue;
                }
                double cSum = 0, eSum = 0;
                for (int k = 0; k < d; k++) {
                    double sc = 0, se = 0;
                    for (int j = 0; j < v; j++) sc += Math.abs(c[j * d + k]);
                    for (int i = 0; i < n; i++) se += Math.abs(e[i * d + k]);
                    cSum = Math.max(cSum, sc);
                    eSum = Math.max(eSum, se);
                }
                assertWithin(f.de, ref.de, eps * g / count * cSum, "dE, " + what);
                assertWithin(f.dc, ref.dc, eps * g / count * eSum, "dC, " + what);
            }
        }
        assertEquals(Math.scalb(1.0, -12), CutCrossEntropy.autoFilterEps(DType.BF16));
        assertEquals(Math.scalb(1.0, -28), CutCrossEntropy.autoFilterEps(DType.F32));
    }

    @Test
    void gemma2bCaseOnMetaCrossEntropyBooksLogitsCutCrossEntropyUnderThreeMegabytes() {
        int n = 8192, d = 2304, v = 256000;
        long ce = LossMemoryReport.peakLossBytes(new CrossEntropy(), n, d, v, DType.BF16);
        long cce = LossMemoryReport.peakLossBytes(new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT), n, d, v, DType.BF16);
        long logits = 4L * n * v;
        System.out.println(LossMemoryReport.report(n, d, v, DType.BF16));
        assertTrue(ce >= 2 * logits, "CE books the N×V fp32 logits and their gradient (2 × " + logits + " B): " + ce);
        assertEquals(8_388_608_000L, logits);
        // 1.4 MB of tiles and row vectors, plus the vocabulary order computed on the device (V int32: 1 MB; the
        // reference's torch.argsort allocates V int64 for it)
        assertTrue(cce < 3_000_000, "CCE loss workspace " + cce + " B must stay under 3 MB");
        assertEquals(ce, new CrossEntropy().lossArenaBytes(n, d, v));
        assertEquals(cce, new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT).lossArenaBytes(n, d, v));
        // the gradient in forward holds a 64-row block of logits, each row's maxima per 16-class tile (for the filter) and
        // fp32 dE and dC: between the two, dominated by dC here
        long fused = LossMemoryReport.peakLossBytes(new CutCrossEntropy(CutCrossEntropy.Options.FUSED), n, d, v, DType.BF16);
        long held = 4L * 64 * v + 4L * 64 * (v / 16) + 4L * n * d + 4L * v * d;
        assertTrue(fused >= held && fused < held + 1_000_000, "fused: block + dE + dC = " + held + " B plus small buffers: " + fused);
        assertTrue(fused < ce / 5, "fused " + fused + " B vs CE " + ce + " B");
    }

    /** The loss arena's ledger peak for one forward + backward on {@code device} (random data on CPU, none on META). */
    private static long lossPeak(LinearCrossEntropy ce, Device device, int n, int d, int v) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, device, 8L << 20);
             MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, device, 8L << 20)) {
            Tensor e = in.allocate("e", DType.F32, n, d), c = in.allocate("c", DType.F32, v, d), t = in.allocate("t", DType.I64, n);
            Tensor l = in.allocate("l", DType.F32, 1), g = in.allocate("g", DType.F32, 1);
            Tensor de = in.allocate("de", DType.F32, n, d), dc = in.allocate("dc", DType.F32, v, d);
            if (device.hasMemory()) {
                SplittableRandom r = new SplittableRandom(n * 31L + v);
                e.copyFrom(rand(r, n * d, 1));
                c.copyFrom(rand(r, v * d, 1));
                long[] ids = new long[n];
                for (int i = 0; i < n; i++) ids[i] = i % 5 == 0 ? LinearCrossEntropy.IGNORE_INDEX : r.nextInt(v);
                t.copyFrom(ids);
                g.copyFrom(new float[] {1});
            }
            dc.ops().fill(dc, 0); // backward adds the classifier's gradient into dC
            ce.backward(ce.forward(e, c, t, l, ws), g, de, dc, ws);
            assertEquals(ws.highWater(), ledger.entry(device, MemoryCategory.LOSS).peak(), "bump arena: high water = ledger peak");
            return ledger.entry(device, MemoryCategory.LOSS).peak();
        }
    }

    @Test
    void metaBooksTheSameLossBytesAsCpuAndTheClosedFormSaysSoUpFront() {
        int[][] shapes = {{45, 12, 301}, {7, 5, 30}, {130, 16, 1000}, {1, 3, 2}};
        LinearCrossEntropy[] losses = {new CrossEntropy(), new CutCrossEntropy(CutCrossEntropy.Options.EXACT),
                new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT),
                new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, false, true, Double.NaN)),
                new CutCrossEntropy(new CutCrossEntropy.Options(16, 4, true, true, false, Double.NaN)),
                new CutCrossEntropy(CutCrossEntropy.Options.FUSED),
                new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, false, false, Double.NaN, true)),
                new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, true, false, Double.NaN, true)).deviceSideFiltering(true)};
        for (int[] s : shapes) {
            for (LinearCrossEntropy ce : losses) {
                String who = ce.getClass().getSimpleName() + (ce instanceof CutCrossEntropy x ? " " + x.options() : "")
                        + " N=" + s[0] + " D=" + s[1] + " V=" + s[2];
                long cpu = lossPeak(ce, Device.CPU, s[0], s[1], s[2]);
                long meta = lossPeak(ce, Device.META, s[0], s[1], s[2]);
                assertEquals(cpu, meta, "META books what CPU books: " + who);
                assertEquals(cpu, ce.lossArenaBytes(s[0], s[1], s[2]), "closed form = booked: " + who);
            }
        }
    }

    @Test
    void autoTilesShrinkAsTheHiddenSizeGrows() {
        CutCrossEntropy.Options auto = CutCrossEntropy.Options.DEFAULT;
        assertEquals(java.util.List.of(32, 16), java.util.Arrays.stream(auto.tiles(8192, 2304, 256000)).boxed().toList());
        assertEquals(java.util.List.of(512, 256), java.util.Arrays.stream(auto.tiles(512, 256, 4096)).boxed().toList());
        assertEquals(java.util.List.of(7, 5), java.util.Arrays.stream(auto.tiles(7, 64, 5)).boxed().toList(), "never larger than N, V");
        assertEquals(java.util.List.of(8, 16), java.util.Arrays.stream(new CutCrossEntropy.Options(8, 16, true, true, true, Double.NaN)
                .tiles(100, 2304, 1000)).boxed().toList(), "explicit tiles are kept");
        assertThrows(IllegalArgumentException.class, () -> new CutCrossEntropy.Options(-1, 16, true, true, true, Double.NaN));
        // the fused pass's row block: about 64 MiB of fp32 logits, a power of two in [16, 2048], never more than N
        CutCrossEntropy.Options fused = CutCrossEntropy.Options.FUSED;
        assertEquals(512, fused.fusedRows(4096, 32000));
        assertEquals(2048, fused.fusedRows(4096, 8192));
        assertEquals(64, fused.fusedRows(8192, 256000));
        assertEquals(1000, fused.fusedRows(1000, 8192));
        assertEquals(8, new CutCrossEntropy.Options(8, 16, true, true, false, Double.NaN, true).fusedRows(100, 32000), "explicit rows are kept");
        IllegalArgumentException sorted = assertThrows(IllegalArgumentException.class,
                () -> new CutCrossEntropy.Options(0, 0, true, true, true, Double.NaN, true));
        assertTrue(sorted.getMessage().contains("sortVocab"), sorted.getMessage());
        assertEquals(fused, ((CutCrossEntropy) LinearCrossEntropy.named("cce_fused")).options());
    }

    @Test
    void noValidTargetGivesNanLossButZeroGradients() {
        SplittableRandom r = new SplittableRandom(3);
        int n = 6, d = 4, v = 20;
        float[] e = rand(r, n * d, 1), c = rand(r, v * d, 1);
        long[] t = new long[n];
        java.util.Arrays.fill(t, LinearCrossEntropy.IGNORE_INDEX);
        for (LinearCrossEntropy ce : new LinearCrossEntropy[] {new CrossEntropy(), new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT),
                new CutCrossEntropy(CutCrossEntropy.Options.FUSED)}) {
            Result got = run(ce, e, c, t, n, d, v);
            assertTrue(Double.isNaN(got.loss), "mean over no tokens is NaN, as torch's: " + got.loss);
            for (double x : got.de) assertEquals(0.0, x, "dE of an all-ignored batch");
            for (double x : got.dc) assertEquals(0.0, x, "dC of an all-ignored batch");
        }
    }

    @Test
    void badShapesAreNamed() {
        try (Fixtures f = new Fixtures(Device.CPU)) {
            Tensor e = f.zeros(DType.F32, 4, 3), c = f.zeros(DType.F32, 5, 2), t = f.zeros(DType.I64, 4), l = f.zeros(DType.F32, 1);
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> new CrossEntropy().forward(e, c, t, l, f.arena));
            assertTrue(x.getMessage().contains("[4, 3]") && x.getMessage().contains("[5, 2]"), x.getMessage());
            assertThrows(IllegalArgumentException.class, () -> LinearCrossEntropy.named("nll"));
        }
    }
}
