package dev.tally.models.loss;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;

/**
 * Cut Cross-Entropy with its backward fused into forward ({@link CutCrossEntropy.Options#gradientInForward}): for each
 * block of rows, one product makes the block's logits for the whole vocabulary, then the log-sum-exp, the loss, the
 * softmax − onehot gradient (filtered tile by tile as in the paper's backward, in natural vocabulary order) and the two
 * gradient products follow while the block is in cache. Backward only scales the saved gradients by dLoss.
 *
 * <p>Why: the paper's CCE recomputes the logits in backward — four N·D·V products where materialized CE makes three —
 * which on a GPU the memory traffic it saves pays for, but on the CPU costs about a third more than CE. This pass makes three,
 * as CE does, and never holds N×V: the price is a row block of fp32 logits (about 64 MiB, {@link
 * CutCrossEntropy.Options#fusedRows}) during forward and an fp32 dE (N×D) and dC (V×D) from forward to backward —
 * bytes the memory plan books in the LOSS arena. Training calls backward right after forward, so those two live only
 * across that gap; a forward that is never followed by backward (the trainer's held-out evaluation) pays for two
 * products it does not use.
 * The same idea as Liger Kernel's fused linear cross-entropy, here with CCE's filtering.
 *
 * <p>The gradients are computed for dLoss = 1 and scaled by the actual dLoss in backward: when dLoss is 1 (as in
 * training) the scaling is exact, so the results do not depend on when it is applied.
 */
final class CceFusedPass {
    private CceFusedPass() {}

    /** dE and dC for dLoss = 1, fp32, held from forward to backward. */
    record State(MemoryArena arena, Tensor gradE, Tensor gradC) implements LinearCrossEntropy.Saved {
        @Override public void free() {
            arena.free(gradC);
            arena.free(gradE);
        }
    }

    /** What forward books: saved dE and dC, then its temporaries (freed before it returns; backward books nothing). */
    static long lossArenaBytes(CutCrossEntropy.Options options, int n, int d, int v) {
        int rows = options.fusedRows(n, v), vt = options.tiles(n, d, v)[1];
        long one = MemoryArena.alignUp(4), blockVec = MemoryArena.alignUp(4L * rows);
        long saved = MemoryArena.alignUp(4L * n * d) + MemoryArena.alignUp(4L * v * d);
        long tiles = (v + vt - 1) / vt;
        long temps = MemoryArena.alignUp(4L * n) + MemoryArena.alignUp(4L * rows * v) + MemoryArena.alignUp(4L * rows * d)
                + 4 * blockVec + 5 * one + 3 * MemoryArena.alignUp(4L * tiles) + MemoryArena.alignUp(4L * rows * tiles);
        return saved + temps;
    }

    /** The loss into {@code loss}, dE and dC (for dLoss = 1) into the returned state; the filter statistics into {@code stats[0]}. */
    static State forward(CutCrossEntropy.Options options, boolean gated, boolean countGated, Tensor e, Tensor c, Tensor targets,
                         Tensor loss, MemoryArena arena, CutCrossEntropy.FilterStats[] stats) {
        Ops ops = e.ops();
        boolean data = e.device().hasMemory(); // META books the same buffers but has no values to branch on
        int n = e.dim(0), d = e.dim(1), v = c.dim(0);
        int rows = options.fusedRows(n, v), vt = options.tiles(n, d, v)[1];
        double eps = Double.isNaN(options.filterEps()) ? CutCrossEntropy.autoFilterEps(e.dtype()) : options.filterEps();
        int tilesPerRow = (v + vt - 1) / vt;
        Tensor gradE = arena.allocate("loss.cce.grad_e", DType.F32, n, d);
        Tensor gradC = arena.allocate("loss.cce.grad_c", DType.F32, v, d);
        long tiles = 0, skippedE = 0, skippedC = 0;
        Temps temps = new Temps(arena);
        try {
            Tensor mask = temps.add("loss.cce.mask", DType.F32, n);
            Tensor count = temps.add("loss.cce.count", DType.F32, 1);
            Tensor scale = temps.add("loss.cce.scale", DType.F32, 1);
            Tensor block = temps.add("loss.cce.logit_block", DType.F32, rows, v);
            Tensor lse = temps.add("loss.cce.lse", DType.F32, rows, 1);
            Tensor targetRows = temps.add("loss.cce.target_rows", DType.F32, rows, d);
            Tensor dot = temps.add("loss.cce.dot", DType.F32, rows, 1);
            Tensor rowScale = temps.add("loss.cce.row_scale", DType.F32, rows);
            Tensor norms = temps.add("loss.cce.row_norms", DType.F32, rows, 1);
            Tensor partial = temps.add("loss.cce.partial", DType.F32, 1);
            Tensor skipped = temps.add("loss.cce.skipped", DType.F32, 1);
            Tensor cMaxT = temps.add("loss.cce.c_max_norm", DType.F32, 1);
            Tensor gates = temps.add("loss.cce.gates", DType.F32, tilesPerRow);
            Tensor tileMax = temps.add("loss.cce.tile_max", DType.F32, tilesPerRow);
            Tensor tileSmall = temps.add("loss.cce.tile_small", DType.F32, tilesPerRow);
            Tensor rowTileMax = temps.add("loss.cce.row_tile_max", DType.F32, rows, tilesPerRow);
            boolean hostFilter = options.filtering() && !gated && data;
            ops.fill(loss, 0);
            ops.fill(skipped, 0);
            ops.fill(gradE, 0);
            ops.binaryScalar(BinaryOp.NE, targets, LinearCrossEntropy.IGNORE_INDEX, mask);
            ops.reduceAll(ReduceOp.SUM, mask, count);
            // the gradients' scale for dLoss = 1: 1 / max(count, 1) (no valid target: NaN loss, zero gradients)
            ops.binaryScalar(BinaryOp.MAX, count, 1, scale);
            ops.fill(partial, 1);
            ops.binary(BinaryOp.DIV, partial, scale, scale);
            double cMax = hostFilter ? CutCrossEntropy.maxRowNorm(c, block, cMaxT) : Double.NaN;
            boolean[] smallTile = new boolean[tilesPerRow];
            boolean cWritten = false; // dC's first product overwrites (beta 0) instead of adding onto a zero fill
            for (int b0 = 0; b0 < n; b0 += rows) {
                int b1 = Math.min(n, b0 + rows), rb = b1 - b0;
                Tensor eb = e.slice(0, b0, b1), maskB = mask.slice(0, b0, b1), tb = targets.slice(0, b0, b1);
                Tensor logits = block.reshape(rows * v).slice(0, 0, rb * v).reshape(rb, v);
                Tensor lseB = lse.slice(0, 0, rb);
                ops.matmul(eb, c.t(), logits, 1, 0);
                ops.reduce(ReduceOp.LOGSUMEXP, logits, 1, lseB);
                CutCrossEntropy.addBlockNll(c, eb, tb, lseB, maskB, targetRows, dot, partial, loss);
                // the gradient d = (softmax − onehot) · mask, in place. The filter tests d itself (the reference's threshold),
                // so it is scaled afterwards; with nothing to test the scale rides in the row scale (mask is 0 or 1).
                boolean test = options.filtering() && (!hostFilter || blockMayHaveSmallTile(eb, lseB, tb, cMax, eps, norms.slice(0, 0, rb)));
                Tensor rs = rowScale.slice(0, 0, rb);
                if (!test) ops.binary(BinaryOp.MUL, maskB, scale, rs);
                ops.softmaxCrossEntropyGrad(logits, lseB, tb, 0, test ? maskB : rs, logits);
                tiles += tilesPerRow;
                Tensor gE = gradE.slice(0, b0, b1);
                if (!test) { // every tile kept: the block's two products
                    ops.matmul(logits, c, gE, 1, 1);
                    ops.matmul(logits.t(), eb, gradC, 1, cWritten ? 1 : 0);
                    cWritten = true;
                    continue;
                }
                if (gated) {
                    // decided on the device: each tile's 0/1 gate from its unscaled d, then the unfiltered product (if
                    // any) of the scaled block, the gates applied, the filtered products — whole-block products, so no
                    // host read (the host-side filter instead skips the products of its small tiles, which sums dE's
                    // and dC's terms in other groups: the same values to fp32 rounding, not the same bits)
                    tileMaxima(logits, vt, rowTileMax, tileMax);
                    ops.binaryScalar(BinaryOp.LT, tileMax, eps, tileSmall); // NaN is not small
                    ops.binaryScalar(BinaryOp.EQ, tileSmall, 0, gates);
                    ops.reduceAll(ReduceOp.SUM, tileSmall, partial);
                    ops.binary(BinaryOp.ADD, skipped, partial, skipped);
                    ops.binary(BinaryOp.MUL, logits, scale, logits);
                    if (!options.filterE()) ops.matmul(logits, c, gE, 1, 1);
                    if (!options.filterC()) ops.matmul(logits.t(), eb, gradC, 1, cWritten ? 1 : 0);
                    for (int k = 0; k < tilesPerRow; k++) {
                        Tensor p = logits.slice(1, k * vt, Math.min(v, k * vt + vt));
                        ops.binary(BinaryOp.MUL, p, gates.slice(0, k, k + 1), p);
                    }
                    if (options.filterE()) ops.matmul(logits, c, gE, 1, 1);
                    if (options.filterC()) ops.matmul(logits.t(), eb, gradC, 1, cWritten ? 1 : 0);
                    cWritten = true;
                    continue;
                }
                boolean anySmall = false;
                tileMaxima(logits, vt, rowTileMax, tileMax);
                float[] maxima = data ? tileMax.toFloatArray() : new float[tilesPerRow];
                for (int k = 0; k < tilesPerRow; k++) {
                    smallTile[k] = data && maxima[k] < eps; // NaN is not small
                    anySmall |= smallTile[k];
                }
                ops.binary(BinaryOp.MUL, logits, scale, logits);
                if (!anySmall) {
                    ops.matmul(logits, c, gE, 1, 1);
                    ops.matmul(logits.t(), eb, gradC, 1, cWritten ? 1 : 0);
                    cWritten = true;
                    continue;
                }
                if (!cWritten) ops.fill(gradC, 0); // the runs below may leave rows of it unwritten
                cWritten = true;
                // runs of consecutive kept tiles, one product each
                for (int pass = 0; pass < 2; pass++) {
                    boolean forE = pass == 0;
                    boolean filtered = forE ? options.filterE() : options.filterC();
                    for (int k = 0; k < tilesPerRow; ) {
                        if (filtered && smallTile[k]) {
                            if (forE) skippedE++; else skippedC++;
                            k++;
                            continue;
                        }
                        int kEnd = k + 1;
                        while (kEnd < tilesPerRow && !(filtered && smallTile[kEnd])) kEnd++;
                        int k0 = k * vt, k1 = Math.min(v, kEnd * vt);
                        Tensor p = logits.slice(1, k0, k1);
                        if (forE) ops.matmul(p, c.slice(0, k0, k1), gE, 1, 1);
                        else ops.matmul(p.t(), eb, gradC.slice(0, k0, k1), 1, 1);
                        k = kEnd;
                    }
                }
            }
            if (!cWritten) ops.fill(gradC, 0); // no rows
            ops.binary(BinaryOp.DIV, loss, count, loss);
            if (gated && data && countGated) {
                long gatedTiles = Math.round(skipped.item());
                skippedE = options.filterE() ? gatedTiles : 0;
                skippedC = options.filterC() ? gatedTiles : 0;
            } else if (gated) {
                skippedE = skippedC = -1;
            }
        } catch (RuntimeException ex) {
            temps.freeAll();
            arena.free(gradC);
            arena.free(gradE);
            throw ex;
        }
        temps.freeAll();
        stats[0] = new CutCrossEntropy.FilterStats(tiles, skippedE, skippedC);
        return new State(arena, gradE, gradC);
    }

    /**
     * dE = dLoss · saved dE (overwritten); dC += dLoss · saved dC (null: a frozen classifier); frees the state. On the CPU,
     * where reading dLoss costs nothing, a dLoss of exactly 1 skips the multiplications (x · 1 = x: the same bits); a GPU
     * multiplies on the device rather than synchronise to read it.
     */
    static void backward(State s, Tensor dLoss, Tensor dE, Tensor dC) {
        Ops ops = s.gradE().ops();
        try {
            boolean unit = dLoss.device() == Device.CPU && dLoss.item() == 1.0;
            if (unit) ops.copy(s.gradE(), dE);
            else ops.binary(BinaryOp.MUL, s.gradE(), dLoss, dE);
            if (dC != null) {
                if (!unit) ops.binary(BinaryOp.MUL, s.gradC(), dLoss, s.gradC());
                ops.binary(BinaryOp.ADD, dC, s.gradC(), dC);
            }
        } finally {
            s.free();
        }
    }

    /**
     * max |d| of each vocabulary tile of the block's gradient d [rb, V] into {@code tileMax}: when the tiles divide V, the
     * block is [rb · tiles, vt] rows whose maxima are one contiguous row reduction, then a reduction over the rb rows;
     * otherwise one reduction per (strided) tile.
     */
    private static void tileMaxima(Tensor d, int vt, Tensor rowTileMax, Tensor tileMax) {
        Ops ops = d.ops();
        int rb = d.dim(0), v = d.dim(1), tiles = (int) tileMax.numel();
        if (v % vt == 0) {
            Tensor perRow = rowTileMax.reshape((int) rowTileMax.numel()).slice(0, 0, rb * tiles).reshape(rb, tiles);
            ops.reduce(ReduceOp.MAX_ABS, d.reshape(rb * tiles, vt), 1, perRow.reshape(rb * tiles, 1));
            ops.reduce(ReduceOp.MAX, perRow, 0, tileMax.reshape(1, tiles));
            return;
        }
        for (int k = 0; k < tiles; k++) ops.reduceAll(ReduceOp.MAX_ABS, d.slice(1, k * vt, Math.min(v, k * vt + vt)), tileMax.slice(0, k, k + 1));
    }

    /** The paper-order backward's bound ({@link CutCrossEntropy#someRowKeepsEveryTile}) for one block: may a tile be small? */
    private static boolean blockMayHaveSmallTile(Tensor eb, Tensor lseB, Tensor targets, double cMax, double eps, Tensor norms) {
        if (!(cMax >= 0)) return true; // NaN: no bound, and no pass over the block for it
        eb.ops().reduce(ReduceOp.NORM2, eb, 1, norms);
        return !CutCrossEntropy.someRowKeepsEveryTile(norms.toFloatArray(), lseB.toFloatArray(), targets.toLongArray(), cMax, eps);
    }
}
