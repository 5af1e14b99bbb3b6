package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

/**
 * Loss memory of CE vs CCE (and CCE with the gradient in forward) for any (N, D, V), found by running forward and backward on the META device: the bytes the
 * loss arena must hold at its peak, beyond the inputs (E, C, targets) and outputs (loss, dE, dC).
 */
public final class LossMemoryReport {
    private LossMemoryReport() {}

    public static long peakLossBytes(LinearCrossEntropy loss, int n, int d, int v, DType dtype) {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena in = new MemoryArena(ledger, "inputs", MemoryCategory.ACTIVATIONS, Device.META, 1L << 50);
             MemoryArena ws = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.META, 1L << 50)) {
            Tensor e = in.allocate("e", dtype, n, d), c = in.allocate("c", dtype, v, d), t = in.allocate("t", DType.I64, n);
            Tensor l = in.allocate("l", DType.F32, 1), g = in.allocate("g", DType.F32, 1);
            Tensor de = in.allocate("de", dtype, n, d), dc = in.allocate("dc", dtype, v, d);
            loss.backward(loss.forward(e, c, t, l, ws), g, de, dc, ws);
            return ws.highWater();
        }
    }

    public static String report(int n, int d, int v, DType dtype) {
        long ce = peakLossBytes(new CrossEntropy(), n, d, v, dtype);
        long cce = peakLossBytes(new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT), n, d, v, dtype);
        long fused = peakLossBytes(new CutCrossEntropy(CutCrossEntropy.Options.FUSED), n, d, v, dtype);
        return String.format("loss memory for N=%d D=%d V=%d (%s), beyond inputs and outputs, planned on META:%n"
                        + "  ce         %,17d B  (%s)%n  cce        %,17d B  (%s)%n  cce_fused  %,17d B  (%s)%n",
                n, d, v, dtype, ce, MemoryLedger.human(ce), cce, MemoryLedger.human(cce), fused, MemoryLedger.human(fused));
    }

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 8192;
        int d = args.length > 1 ? Integer.parseInt(args[1]) : 2304;
        int v = args.length > 2 ? Integer.parseInt(args[2]) : 256000;
        System.out.print(report(n, d, v, DType.BF16));
    }
}
