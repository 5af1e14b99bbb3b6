package dev.tally.tests.golden;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.optim.OptimizerKind;
import dev.tally.optim.Optimizers;
import dev.tally.optim.TallyOptimizer;

import java.util.List;
import java.util.Map;

/**
 * kind = optimizer: build the optimizer from the recorded hyperparameters, feed w0 and the recorded gradients (and the
 * reference's own projection matrices, when recorded), and compare the weight after every step.
 */
public final class OptimizerGolden {
    /** Relative error bound per step: max |w − w_ref| / max |w_ref|, fp32 on the CPU. */
    public static final double TOLERANCE = 1e-5;

    private OptimizerGolden() {}

    /** Worst relative error over the trajectory (for reports); throws when a step exceeds {@link #TOLERANCE}. */
    public static double check(SafeTensors.File f) {
        Map<String, String> meta = f.metadata();
        OptimizerKind kind = OptimizerKind.parse(meta.get("optimizer"));
        Map<String, Object> hparams = Json.parseObject(meta.get("hparams"));
        int steps = Integer.parseInt(meta.get("steps"));
        int[] shape = f.entry("w0").shape();
        boolean lowRank = Boolean.parseBoolean(meta.get("low_rank"));
        if (!lowRank) for (String k : List.of("rank", "update_proj_gap", "scale", "proj_type")) hparams.remove(k);
        MemoryLedger ledger = new MemoryLedger();
        long bytes = 2 * MemoryArena.bookedBytes(DType.F32, Shape.of(shape));
        try (MemoryArena arena = new MemoryArena(ledger, "golden", MemoryCategory.WEIGHTS, Device.CPU, bytes)) {
            Tensor w = arena.allocate("w", DType.F32, shape);
            Tensor g = arena.allocate("g", DType.F32, shape);
            w.copyFrom(f.floats("w0"));
            Parameter p = new Parameter("golden.weight", w);
            p.setGrad(g);
            TallyOptimizer opt = lowRank
                    ? Optimizers.create(kind, hparams, List.of(p), List.of())
                    : Optimizers.create(kind, hparams, List.of(), List.of(p));
            dev.tally.optim.ReplayAccess.supplyProjections(opt, (param, k) -> {
                if (!f.has("proj." + k)) throw new AssertionError(f.path() + " has no proj." + k + " for refresh " + k);
                return f.floats("proj." + k);
            });
            opt.allocateState(ledger);
            double worst = 0;
            for (int k = 0; k < steps; k++) {
                g.copyFrom(f.floats("grad." + k));
                opt.step();
                float[] expect = f.floats("w." + (k + 1)), got = w.toFloatArray();
                double err = RelativeError.between(got, expect).value();
                worst = Math.max(worst, err);
                if (!(err <= TOLERANCE)) {
                    throw new AssertionError(f.path().getFileName() + ": step " + (k + 1) + " relative error " + err + " > " + TOLERANCE);
                }
            }
            return worst;
        }
    }
}
