package dev.tally.tests.golden;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.loss.CrossEntropy;
import dev.tally.models.loss.CutCrossEntropy;
import dev.tally.models.loss.LinearCrossEntropy;

import java.util.List;

/**
 * kind = cross_entropy: loss, dE and dC of the mean linear cross-entropy against float64 expectations, for the
 * materialized reference (CE), exact CCE, CCE with its default filtering, and CCE with the gradient in forward (one
 * block and several). Computation is fp32 on the CPU; the bound is relative to the largest expected magnitude of each
 * quantity.
 */
final class CrossEntropyGolden {
    /** fp32 computation against float64 expectations: relative to the quantity's largest magnitude. */
    static final double TOLERANCE = 1e-6;

    private CrossEntropyGolden() {}

    static void check(SafeTensors.File f) {
        int n = f.entry("E").shape()[0], d = f.entry("E").shape()[1], v = f.entry("C").shape()[0];
        for (LinearCrossEntropy loss : List.of(new CrossEntropy(), new CutCrossEntropy(CutCrossEntropy.Options.EXACT),
                new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT),
                new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, true, true, true, Double.NaN)),
                new CutCrossEntropy(CutCrossEntropy.Options.FUSED),
                new CutCrossEntropy(new CutCrossEntropy.Options(16, 32, true, true, false, Double.NaN, true)))) { // several blocks
            MemoryLedger ledger = new MemoryLedger();
            try (MemoryArena in = new MemoryArena(ledger, "in", MemoryCategory.ACTIVATIONS, Device.CPU, 16L << 20);
                 MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 16L << 20)) {
                Tensor e = in.allocate("E", DType.F32, n, d).copyFrom(f.floats("E"));
                Tensor c = in.allocate("C", DType.F32, v, d).copyFrom(f.floats("C"));
                Tensor t = in.allocate("targets", DType.I64, n).copyFrom(f.longs("targets"));
                Tensor l = in.allocate("loss", DType.F32, 1), g = in.allocate("dloss", DType.F32, 1).copyFrom(new float[] {1});
                Tensor de = in.allocate("dE", DType.F32, n, d), dc = in.allocate("dC", DType.F32, v, d);
                dc.ops().fill(dc, 0); // backward adds the classifier's gradient into dC
                loss.backward(loss.forward(e, c, t, l, ws), g, de, dc, ws);
                String who = f.path().getFileName() + " " + loss.getClass().getSimpleName()
                        + (loss instanceof CutCrossEntropy cce ? " " + cce.options() : "");
                compare(who + " loss", l.toDoubleArray(), f.doubles("loss"));
                compare(who + " dE", de.toDoubleArray(), f.doubles("dE"));
                compare(who + " dC", dc.toDoubleArray(), f.doubles("dC"));
                if (loss instanceof CutCrossEntropy cce && cce.options().filtering()) System.out.println("  " + who + " " + cce.filterStats());
                if (ws.used() != 0) throw new AssertionError(who + ": loss arena still holds " + ws.used() + " B after backward");
            }
        }
    }

    static void compare(String what, double[] got, double[] expect) {
        RelativeError err = RelativeError.between(got, expect);
        // printed so the measured figures are on record (the report quotes them), not only pass/fail
        System.out.printf("  %-90s max |diff| %.3e  / max |expected| %.3e  = %.3e%n", what, err.maxAbsDiff(), err.maxAbsExpected(), err.value());
        if (!err.within(TOLERANCE)) throw new AssertionError(what + ": relative error " + err.value() + " > " + TOLERANCE);
    }
}
