package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * CCE's backward with the tile filter decided on the device (what CUDA uses): the same bits as the host-side filter on
 * the CPU, and no host transfer at all (one, after the loop, when asked to count the gated tiles).
 */
class CceDeviceSideFilterTest {

    /** loss, dE, dC (raw float bits), the filter statistics, and the host transfers backward made. */
    private record Run(float loss, int[] dE, int[] dC, CutCrossEntropy.FilterStats stats, long backwardTransfers) {}

    private static int[] bits(Tensor t) {
        float[] f = t.toFloatArray();
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Float.floatToRawIntBits(f[i]);
        return b;
    }

    private static Run run(CutCrossEntropy cce, int n, int d, int v, long seed) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, Device.CPU, 8L << 20);
             MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 8L << 20)) {
            Tensor e = in.allocate("e", DType.F32, n, d), c = in.allocate("c", DType.F32, v, d), t = in.allocate("t", DType.I64, n);
            Tensor l = in.allocate("l", DType.F32, 1), g = in.allocate("g", DType.F32, 1);
            Tensor de = in.allocate("de", DType.F32, n, d), dc = in.allocate("dc", DType.F32, v, d);
            SplittableRandom r = new SplittableRandom(seed);
            double[] ev = new double[n * d], cv = new double[v * d];
            for (int i = 0; i < ev.length; i++) ev[i] = r.nextGaussian() * 4; // peaky softmax: many negligible tiles
            for (int i = 0; i < cv.length; i++) cv[i] = r.nextGaussian() * (i / d % 3 == 0 ? 2 : 0.5);
            e.copyFrom(ev);
            c.copyFrom(cv);
            long[] ids = new long[n];
            for (int i = 0; i < n; i++) ids[i] = i % 6 == 0 ? LinearCrossEntropy.IGNORE_INDEX : r.nextInt(v);
            t.copyFrom(ids);
            g.copyFrom(new float[] {1});
            LinearCrossEntropy.Saved saved = cce.forward(e, c, t, l, ws);
            dc.ops().fill(dc, 0); // backward adds the classifier's gradient into dC
            long before = Tensor.hostTransfers();
            cce.backward(saved, g, de, dc, ws);
            long transfers = Tensor.hostTransfers() - before;
            return new Run((float) l.item(), bits(de), bits(dc), cce.filterStats(), transfers);
        }
    }

    @Test void deviceSideFilterGivesTheSameBitsAsTheHostSideFilter() {
        CutCrossEntropy.Options[] variants = {
                new CutCrossEntropy.Options(8, 16, true, true, true, Double.NaN),    // sorted, both filtered
                new CutCrossEntropy.Options(8, 16, true, false, true, Double.NaN),   // dE only
                new CutCrossEntropy.Options(8, 16, false, true, false, Double.NaN),  // dC only, natural order
                new CutCrossEntropy.Options(16, 32, true, true, false, 1e-3)};       // coarse eps: most tiles gated
        for (CutCrossEntropy.Options o : variants) hostAndDevice(o, true);
    }

    /**
     * The host-side and the (counting) device-side filter on the same data: the same loss bits and tiles filtered, some
     * tile filtered, and dE and dC the same bits ({@code sameBits}) or equal to fp32 rounding. Returns {host, device}.
     */
    private static Run[] hostAndDevice(CutCrossEntropy.Options o, boolean sameBits) {
        Run host = run(new CutCrossEntropy(o).deviceSideFiltering(false), 40, 12, 200, 7);
        Run device = run(new CutCrossEntropy(o).deviceSideFiltering(true).countingGatedTiles(true), 40, 12, 200, 7);
        assertEquals(Float.floatToRawIntBits(host.loss()), Float.floatToRawIntBits(device.loss()), o.toString());
        if (sameBits) {
            assertArrayEquals(host.dE(), device.dE(), "dE bits, " + o);
            assertArrayEquals(host.dC(), device.dC(), "dC bits, " + o);
        } else {
            assertClose(host.dE(), device.dE(), "dE, " + o);
            assertClose(host.dC(), device.dC(), "dC, " + o);
        }
        assertEquals(host.stats(), device.stats(), "the same tiles filtered, " + o);
        assertTrue(host.stats().skippedE() + host.stats().skippedC() > 0, "the data must exercise the filter: " + host.stats());
        return new Run[] {host, device};
    }

    /**
     * The pass with the gradient in forward: its device-side filter zeroes a small tile's d and makes whole-block
     * products, where the host-side one skips that tile's products — the same loss bits and tiles filtered, gradients
     * equal to fp32 rounding (their terms summed in other groups); and backward, a scaling, reads nothing per tile.
     */
    @Test void fusedPassDeviceSideFilterAgreesWithTheHostSide() {
        CutCrossEntropy.Options[] variants = {
                new CutCrossEntropy.Options(8, 16, true, true, false, Double.NaN, true),
                new CutCrossEntropy.Options(8, 16, true, false, false, Double.NaN, true),
                new CutCrossEntropy.Options(8, 16, false, true, false, Double.NaN, true),
                new CutCrossEntropy.Options(8, 8, true, true, false, Double.NaN, true),   // tiles divide V: one row reduction
                new CutCrossEntropy.Options(16, 32, true, true, false, 1e-3, true)};
        for (CutCrossEntropy.Options o : variants) {
            Run[] runs = hostAndDevice(o, false);
            // on the CPU backward reads dLoss once (to skip multiplying by 1), a GPU never: nothing per tile either way
            assertEquals(1, runs[0].backwardTransfers(), "fused backward transfers, host-side filter");
            assertEquals(1, runs[1].backwardTransfers(), "fused backward transfers, device-side filter");
        }
    }

    /** Raw float bits compared as values: max |a − b| within 1e-5 of max |a|. */
    private static void assertClose(int[] a, int[] b, String what) {
        double scale = 0, err = 0;
        for (int i = 0; i < a.length; i++) {
            double x = Float.intBitsToFloat(a[i]), y = Float.intBitsToFloat(b[i]);
            scale = Math.max(scale, Math.abs(x));
            err = Math.max(err, Math.abs(x - y));
        }
        assertTrue(scale > 0 && err <= 1e-5 * scale, what + ": error " + err + " at scale " + scale);
    }

    @Test void noHostTransferInBackward() {
        CutCrossEntropy cce = new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, true, true, Double.NaN))
                .deviceSideFiltering(true);
        Run few = run(cce, 16, 8, 32, 3);    // 2 × 2 tiles
        Run many = run(cce, 64, 8, 512, 3);  // 8 × 32 tiles
        assertTrue(many.stats().tiles() >= 100 * few.stats().tiles() / 2, many.stats() + " vs " + few.stats());
        // the visiting order (argsort), each row's target position and the scale are ops: nothing crosses to the host
        assertEquals(0, few.backwardTransfers(), "backward transfers");
        assertEquals(0, many.backwardTransfers(), "backward transfers");
        assertEquals(-1, many.stats().skippedE(), "not counted unless asked: " + many.stats());
        // asked to count: one read, after the loop
        Run counted = run(cce.countingGatedTiles(true), 64, 8, 512, 3);
        assertEquals(1, counted.backwardTransfers(), "backward transfers when counting");
        assertTrue(counted.stats().skippedE() >= 0, counted.stats().toString());
        // without filtering (cce_exact) nothing is read either
        Run exact = run(new CutCrossEntropy(CutCrossEntropy.Options.EXACT), 64, 8, 512, 3);
        assertEquals(0, exact.backwardTransfers(), "cce_exact backward transfers");
        // the counter sees per-tile reads where they happen: the host-side filter reads max |p| once per tile
        Run hostSide = run(new CutCrossEntropy(new CutCrossEntropy.Options(8, 16, true, true, true, Double.NaN))
                .deviceSideFiltering(false), 64, 8, 512, 3);
        assertTrue(hostSide.backwardTransfers() >= hostSide.stats().tiles(), "host-side: " + hostSide.backwardTransfers());
    }
}
