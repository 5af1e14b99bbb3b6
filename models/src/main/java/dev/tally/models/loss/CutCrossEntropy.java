package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;

import java.util.Arrays;


/**
 * Cut Cross-Entropy (Wijmans et al. 2025): the loss and its gradients without ever materializing the N×V logits.
 * Forward walks (row block × vocabulary tile) tiles, merging each tile's log-sum-exp into a running per-row LSE, and
 * takes the target logit as an indexed dot product E_i·C_{t_i}. Backward recomputes each tile's logits, forms
 * softmax − onehot, and — with filtering — skips a tile whose every entry is below eps (machine eps of the input dtype
 * / 32), visiting the vocabulary sorted by average logit so that negligible columns cluster into whole skippable tiles.
 * Memory: the per-row LSE, the per-column average logit, and tile-sized workspace — independent of N×V. With
 * {@link Options#gradientInForward} ({@code --loss cce_fused}) forward computes the gradients instead, making three
 * N·D·V products instead of four for a row block of logits and an fp32 dE and dC held until backward ({@link CceFusedPass}).
 */
public final class CutCrossEntropy implements LinearCrossEntropy {

    /**
     * Tile sizes and filtering. A tile size of {@link #AUTO} is chosen from D by {@link #tiles}; {@code filterEps} NaN
     * means "auto": eps(dtype of E)/32. {@code gradientInForward}: the gradients computed in forward from a row block of
     * logits ({@link #FUSED}, {@link CceFusedPass}) instead of recomputed in backward, the paper's way.
     */
    public record Options(int rowBlock, int vocabTile, boolean filterE, boolean filterC, boolean sortVocab, double filterEps,
                          boolean gradientInForward) {
        public static final int AUTO = 0;
        public static final Options DEFAULT = new Options(AUTO, AUTO, true, true, true, Double.NaN);
        public static final Options EXACT = new Options(AUTO, AUTO, false, false, false, Double.NaN);
        /**
         * The gradients computed in forward, one pass over the vocabulary per row block (see {@link CceFusedPass}):
         * three N·D·V products instead of four, for a row block of logits and an fp32 dE and dC held from forward to
         * backward. Filters in natural vocabulary order.
         */
        public static final Options FUSED = new Options(AUTO, AUTO, true, true, false, Double.NaN, true);

        public Options {
            if (rowBlock < 0 || vocabTile < 0) {
                throw new IllegalArgumentException("CCE tiles must be positive (or AUTO = 0): " + rowBlock + "x" + vocabTile);
            }
            if (gradientInForward && sortVocab) {
                // sorting needs every row's logits before the first gradient; the fused pass has one row block's
                throw new IllegalArgumentException("CCE with the gradient in forward visits the vocabulary in natural order: sortVocab must be false");
            }
        }

        /** The paper's CCE: gradients in backward, from recomputed logits. */
        public Options(int rowBlock, int vocabTile, boolean filterE, boolean filterC, boolean sortVocab, double filterEps) {
            this(rowBlock, vocabTile, filterE, filterC, sortVocab, filterEps, false);
        }

        /**
         * Rows of logits the fused pass holds at once: the row block if set, else a power of two in [16, 2048] keeping the
         * block near 64 MiB (512 rows at V = 32000, 2048 at V = 8192, 64 at V = 256000). Each block's three products pack
         * the whole classifier again (C for the logits and for dE) and read and write all of dC, so a block needs
         * hundreds of rows before that costs little next to its arithmetic: at N×D×V = 1024×256×32000 on two cores,
         * 128-row blocks took 1.25× CE's time, 256 1.20×, 512 1.03×.
         */
        public int fusedRows(int n, int v) {
            int rows = rowBlock != AUTO ? rowBlock : clampPow2((1 << 24) / Math.max(1, v), 16, 2048);
            return Math.max(1, Math.min(rows, n));
        }

        /**
         * The (row block, vocabulary tile) used for N×D hidden states and V classes. AUTO keeps each D-wide gathered
         * block near 256 KiB (vocab tile 2^16/D, row block 2^17/D, powers of two in [16, 256] and [16, 512]): large
         * tiles where D is small (fewer, larger matmuls on the CPU: at D = 256 a 512-row block amortises packing the
         * tile's classifier rows over 4× the rows of a 128-row one and makes a quarter of the calls), small ones where
         * D is large (a Gemma-2-2B-sized workspace stays well under 2 MB). Doubling both at D = 256 measured no faster
         * on the shared 2-core machine (within its noise) and would change every planned table.
         */
        public int[] tiles(int n, int d, int v) {
            int nb = rowBlock == AUTO ? clampPow2((1 << 17) / Math.max(1, d), 16, 512) : rowBlock;
            int vt = vocabTile == AUTO ? clampPow2((1 << 16) / Math.max(1, d), 16, 256) : vocabTile;
            return new int[] {Math.max(1, Math.min(nb, n)), Math.max(1, Math.min(vt, v))};
        }

        private static int clampPow2(int x, int lo, int hi) {
            return Math.max(lo, Math.min(hi, Integer.highestOneBit(Math.max(1, x))));
        }

        /** True when either gradient may skip tiles. */
        public boolean filtering() { return filterE || filterC; }
    }

    private final Options options;
    /** Filter without host reads (see {@link #deviceSideFiltering}); null: only where a host read synchronises a GPU. */
    private final Boolean deviceFilter;
    /** Read the device filter's skip count after backward (one host synchronisation) for {@link #filterStats()}. */
    private final boolean countGatedTiles;

    public CutCrossEntropy(Options options) { this(options, null, false); }

    private CutCrossEntropy(Options options, Boolean deviceFilter, boolean countGatedTiles) {
        this.options = options;
        this.deviceFilter = deviceFilter;
        this.countGatedTiles = countGatedTiles;
    }

    /**
     * The same loss with the tile filter decided on the device ({@code true}) or on the host ({@code false}). On the
     * host a negligible tile skips its two matmuls, but reading its max |p| back is a stream synchronisation per tile
     * on a GPU; on the device the tile's contribution is multiplied by a 0/1 gate instead, so backward issues no host
     * read at all (the matmuls run anyway). The results are the same bits. Default: device-side on CUDA, host-side on
     * the CPU, where reading a value costs nothing.
     */
    public CutCrossEntropy deviceSideFiltering(boolean onDevice) { return new CutCrossEntropy(options, onDevice, countGatedTiles); }

    /**
     * With the device-side filter, whether backward reads the number of gated tiles back for {@link #filterStats()}
     * (one host synchronisation after the tile loop; {@code tally bench} asks for it). Off by default: the statistics
     * then report −1 skipped tiles, and backward makes no host read at all.
     */
    public CutCrossEntropy countingGatedTiles(boolean count) { return new CutCrossEntropy(options, deviceFilter, count); }

    public Options options() { return options; }

    /** eps(dtype)/32: 2^-12 for bf16, 2^-15 for f16, 2^-28 for f32 (the reference's "auto" threshold). */
    public static double autoFilterEps(DType dtype) {
        return switch (dtype) {
            case BF16 -> Math.scalb(1.0, -7) / 32;
            case F16 -> Math.scalb(1.0, -10) / 32;
            default -> Math.scalb(1.0, -23) / 32;
        };
    }

    private record State(MemoryArena arena, Tensor e, Tensor c, Tensor targets, Tensor lse, Tensor mask, Tensor count, Tensor avg)
            implements Saved {
        @Override public void free() {
            if (avg != null) arena.free(avg);
            for (Tensor t : new Tensor[] {count, mask, lse}) arena.free(t);
        }
    }

    /**
     * What gradient filtering did in the last backward pass: vocabulary tiles visited, and how many of them skipped the
     * dE and the dC products because every softmax value in the tile was below the threshold ({@code tally bench}
     * reports these next to CCE's time); −1 where the device-side filter was not asked to count
     * ({@link #countingGatedTiles}).
     */
    public record FilterStats(long tiles, long skippedE, long skippedC) {}

    private FilterStats lastStats = new FilterStats(0, 0, 0);

    /** Filtering statistics of the last backward pass — of the last forward with the gradient in forward (all zero before the first). */
    public FilterStats filterStats() { return lastStats; }

    /**
     * Saved for backward: lse, mask (N each), count, and with sorting the average logit (V, booked by forward, filled by
     * backward when it sorts); forward's temporaries: one logit tile, tile LSE, the block's gathered target rows (row
     * block × D), dot, partial sum; backward's: one logit tile, with sorting the gathered classifier rows (first the
     * masked sum of the hidden states) and their dC (tile columns × D each) and the visiting order (V; each id's rank in
     * it reuses the average logit's V × 4 bytes), each row's target position in that order (N), scale, max |d|, and the
     * device filter's small/gate flags and skip count. Independent of N×V: for N = 8192, D = 2304, V = 256000 about
     * 2.6 MiB.
     */
    @Override public long lossArenaBytes(int n, int d, int v) {
        if (options.gradientInForward()) return CceFusedPass.lossArenaBytes(options, n, d, v);
        int[] tileDims = options.tiles(n, d, v);
        int nb = tileDims[0], vt = tileDims[1];
        boolean avg = options.filtering() && options.sortVocab();
        long one = MemoryArena.alignUp(4), row = MemoryArena.alignUp(4L * n), tile = MemoryArena.alignUp(4L * nb * vt);
        long blockVec = MemoryArena.alignUp(4L * nb);
        long saved = 2 * row + one + (avg ? MemoryArena.alignUp(4L * v) : 0);
        long forwardTemps = tile + blockVec + MemoryArena.alignUp(4L * nb * d) + blockVec + one;
        long backwardTemps = tile + (avg ? 2 * MemoryArena.alignUp(4L * vt * d) + MemoryArena.alignUp(4L * v) : 0) + row + 5 * one;
        return saved + Math.max(forwardTemps, backwardTemps);
    }

    @Override public Saved forward(Tensor e, Tensor c, Tensor targets, Tensor loss, MemoryArena arena) {
        LossChecks.check(e, c, targets, loss);
        if (options.gradientInForward()) {
            FilterStats[] stats = new FilterStats[1];
            Saved state = CceFusedPass.forward(options, gated(e), countGatedTiles, e, c, targets, loss, arena, stats);
            lastStats = stats[0];
            return state;
        }
        Ops ops = e.ops();
        int n = e.dim(0), d = e.dim(1), v = c.dim(0);
        int[] tileDims = options.tiles(n, d, v);
        int nb = tileDims[0], vt = tileDims[1];
        Tensor lse = arena.allocate("loss.cce.lse", DType.F32, n, 1);
        Tensor mask = arena.allocate("loss.cce.mask", DType.F32, n);
        Tensor count = arena.allocate("loss.cce.count", DType.F32, 1);
        Tensor avg = options.filtering() && options.sortVocab() ? arena.allocate("loss.cce.logit_avg", DType.F32, v) : null;
        Temps temps = new Temps(arena);
        try {
            Tensor tile = temps.add("loss.cce.tile", DType.F32, nb, vt);
            Tensor tileLse = temps.add("loss.cce.tile_lse", DType.F32, nb, 1);
            Tensor rows = temps.add("loss.cce.target_rows", DType.F32, nb, d);
            Tensor dot = temps.add("loss.cce.dot", DType.F32, nb, 1);
            Tensor partial = temps.add("loss.cce.partial", DType.F32, 1);
            ops.fill(lse, Double.NEGATIVE_INFINITY);
            ops.fill(loss, 0);
            ops.binaryScalar(BinaryOp.NE, targets, IGNORE_INDEX, mask);
            ops.reduceAll(ReduceOp.SUM, mask, count);
            for (int b0 = 0; b0 < n; b0 += nb) {
                int b1 = Math.min(n, b0 + nb), rb = b1 - b0;
                Tensor eb = e.slice(0, b0, b1), lseB = lse.slice(0, b0, b1), maskB = mask.slice(0, b0, b1);
                for (int v0 = 0; v0 < v; v0 += vt) {
                    int v1 = Math.min(v, v0 + vt);
                    Tensor logits = packed(tile, rb, v1 - v0);
                    ops.matmul(eb, c.slice(0, v0, v1).t(), logits, 1, 0);
                    Tensor tl = tileLse.slice(0, 0, rb);
                    ops.reduce(ReduceOp.LOGSUMEXP, logits, 1, tl);
                    ops.binary(BinaryOp.LOGADDEXP, lseB, tl, lseB);
                }
                addBlockNll(c, eb, targets.slice(0, b0, b1), lseB, maskB, rows, dot, partial, loss);
            }
            ops.binary(BinaryOp.DIV, loss, count, loss);
        } finally {
            temps.freeAll();
        }
        return new State(arena, e, c, targets, lse, mask, count, avg);
    }

    @Override public void backward(Saved saved, Tensor dLoss, Tensor dE, Tensor dC, MemoryArena arena) {
        if (saved instanceof CceFusedPass.State fused) {
            CceFusedPass.backward(fused, dLoss, dE, dC);
            return;
        }
        State s = (State) saved;
        Tensor e = s.e, c = s.c;
        Ops ops = e.ops();
        boolean data = e.device().hasMemory(); // META books the same buffers but has no values to branch on
        int n = e.dim(0), d = e.dim(1), v = c.dim(0);
        int[] tileDims = options.tiles(n, d, v);
        int nb = tileDims[0], vt = tileDims[1];
        double eps = Double.isNaN(options.filterEps()) ? autoFilterEps(e.dtype()) : options.filterEps();
        boolean sortedOptions = s.avg != null;
        long tiles = 0, skippedE = 0, skippedC = 0;
        Temps temps = new Temps(arena);
        try {
            Tensor tile = temps.add("loss.cce.tile", DType.F32, nb, vt);
            // sorted: the tile's classifier rows are gathered once per vocabulary tile and its dC is summed over every
            // row block before one scatter-add; unsorted: the rows are a slice of C, and the products add into dC's slice
            Tensor rows = sortedOptions ? temps.add("loss.cce.rows", DType.F32, vt, d) : null;
            Tensor dRows = sortedOptions ? temps.add("loss.cce.d_rows", DType.F32, vt, d) : null;
            boolean wantC = dC != null;
            Tensor targetPos = temps.add("loss.cce.target_pos", DType.I32, n);
            Tensor scale = temps.add("loss.cce.scale", DType.F32, 1);
            Tensor maxAbs = temps.add("loss.cce.max_abs", DType.F32, 1);
            Tensor tileSmall = temps.add("loss.cce.small", DType.F32, 1);
            Tensor gate = temps.add("loss.cce.gate", DType.F32, 1);
            Tensor skipped = temps.add("loss.cce.skipped", DType.F32, 1);
            boolean gated = gated(e);
            // Only the host-side filter reads the device: max |d| per tile. Everything else — the visiting order, each
            // row's target position in it, the products' scale — is computed by ops where the data lives, so on a GPU
            // backward issues no host synchronisation (with the device-side filter, none at all unless asked to count).
            boolean hostFilter = options.filtering() && !gated && data;
            Tensor orderIds = sortedOptions ? temps.add("loss.cce.order", DType.I32, v) : null;
            // Host-side filtering first asks whether any tile could be skipped at all; when none can (near-uniform
            // softmax, as at initialisation), sorting could not pay for its gathers and scatters nor the test for its
            // pass over each tile, and the vocabulary is visited in natural order with every product made — the tiles
            // the filter would have made, summed in another order.
            boolean filter = options.filtering()
                    && (!hostFilter || someTileMayBeSmall(s, s.targets.toLongArray(), eps, nb, tile, maxAbs));
            boolean sorted = sortedOptions && filter;
            ops.fill(skipped, 0);
            ops.fill(dE, 0);
            // d = (softmax − onehot) · mask is what the filter tests (the reference's threshold is on d itself); it is
            // then scaled by dLoss / max(count, 1). With no valid target the loss is NaN (0/0, as torch's mean), the
            // gradients 0.
            ops.binaryScalar(BinaryOp.MAX, s.count, 1, scale);
            ops.binary(BinaryOp.DIV, dLoss, scale, scale);
            // With nothing tested against eps the scale can ride in the row scale, one multiply of N values instead of one
            // pass over every tile: the mask is 0 or 1, so fl(fl(g·mask)·scale) = fl(g·fl(mask·scale)) bit for bit (signed
            // zeros, NaN and ±∞ included). A filter tests the unscaled d, so it keeps the per-tile multiply. The mask is
            // saved state that nothing reads after this pass.
            boolean scaleInRows = !filter;
            if (scaleInRows) ops.binary(BinaryOp.MUL, s.mask, scale, s.mask);
            if (sorted) {
                // The average logit of each class over the valid rows, Σ_i mask_i E_i·C_j / count = (Σ_i mask_i E_i)·C_j /
                // count: one product of the masked sum of E with C. The reference accumulates it in its forward kernel;
                // here forward only books it and backward computes it when the filter may skip a tile (at initialisation
                // on the CPU it never is) — the same values, from the same saved E, C and mask.
                Tensor maskedSum = rows.slice(0, 0, 1); // the gathered rows' buffer is free until the first tile
                ops.matmul(s.mask.reshape(1, n), e, maskedSum, 1, 0);
                ops.matmul(maskedSum, c.t(), s.avg.reshape(1, v), 1, 0);
                ops.binary(BinaryOp.DIV, s.avg, s.count, s.avg);
                // ascending average logit (ties by id); rank[id] = the id's position, 1-based so that an ignored target
                // (a negative id, which embedding turns into 0) comes out as −1 after the shift back
                Tensor rank = s.avg.viewAs(DType.I32); // the averages are read (sorted) before their bytes are written
                ops.argsort(s.avg, orderIds, rank);
                ops.binaryScalar(BinaryOp.ADD, rank, 1, rank);
                ops.embedding(rank.reshape(v, 1), s.targets, targetPos.reshape(n, 1));
                ops.binaryScalar(BinaryOp.SUB, targetPos, 1, targetPos);
            } else {
                ops.copy(s.targets, targetPos); // natural order: the target id is its position (ignored ones negative)
            }
            for (int k0 = 0; k0 < v; k0 += vt) {
                int k1 = Math.min(v, k0 + vt), w = k1 - k0;
                Tensor idsT = null, cg, dCg;
                if (sorted) {
                    idsT = orderIds.slice(0, k0, k1);
                    cg = rows.slice(0, 0, w);
                    ops.embedding(c, idsT, cg);
                    dCg = dRows.slice(0, 0, w);
                } else {
                    cg = c.slice(0, k0, k1);
                    dCg = wantC ? dC.slice(0, k0, k1) : null;
                }
                // the tile's first product overwrites the gathered rows' dC (beta 0); dC's own slice is always added to
                boolean dCgWritten = !sorted;
                for (int b0 = 0; b0 < n; b0 += nb) {
                    int b1 = Math.min(n, b0 + nb), rb = b1 - b0;
                    Tensor eb = e.slice(0, b0, b1), lseB = s.lse.slice(0, b0, b1), maskB = s.mask.slice(0, b0, b1);
                    tiles++;
                    Tensor p = packed(tile, rb, w);
                    ops.matmul(eb, cg.t(), p, 1, 0);
                    // the target's column in this tile is its position minus k0: outside [0, w) it subtracts nothing
                    ops.softmaxCrossEntropyGrad(p, lseB, targetPos.slice(0, b0, b1), k0, maskB, p);
                    if (gated) { // the same decision as below, on the device: contributions times a 0/1 gate
                        ops.reduceAll(ReduceOp.MAX_ABS, p, maxAbs);
                        ops.binaryScalar(BinaryOp.LT, maxAbs, eps, tileSmall);   // NaN is not small, as below
                        ops.binaryScalar(BinaryOp.EQ, tileSmall, 0, gate);
                        ops.binary(BinaryOp.ADD, skipped, tileSmall, skipped);
                        ops.binary(BinaryOp.MUL, p, scale, p);
                        // an unfiltered gradient takes p before the gate; gated entries become ±0 and add nothing
                        if (!options.filterE()) ops.matmul(p, cg, dE.slice(0, b0, b1), 1, 1);
                        if (!options.filterC() && wantC) ops.matmul(p.t(), eb, dCg, 1, dCgWritten ? 1 : 0);
                        ops.binary(BinaryOp.MUL, p, gate, p);
                        if (options.filterE()) ops.matmul(p, cg, dE.slice(0, b0, b1), 1, 1);
                        if (options.filterC() && wantC) ops.matmul(p.t(), eb, dCg, 1, dCgWritten ? 1 : 0);
                        dCgWritten = true;
                        continue;
                    }
                    boolean skipE = false, skipC = false;
                    if (filter && hostFilter) {
                        ops.reduceAll(ReduceOp.MAX_ABS, p, maxAbs);
                        boolean small = maxAbs.item() < eps;
                        skipE = small && options.filterE();
                        skipC = small && options.filterC();
                    }
                    if (skipE) skippedE++;
                    if (skipC) skippedC++;
                    if (skipE && (skipC || !wantC)) continue;
                    if (!scaleInRows) ops.binary(BinaryOp.MUL, p, scale, p);
                    if (!skipE) ops.matmul(p, cg, dE.slice(0, b0, b1), 1, 1);
                    if (!skipC && wantC) {
                        ops.matmul(p.t(), eb, dCg, 1, dCgWritten ? 1 : 0);
                        dCgWritten = true;
                    }
                }
                if (sorted && dCgWritten && wantC) ops.scatterAddRows(idsT, dCg, dC); // else every product was skipped
            }
            if (gated && data && countGatedTiles) { // one read, after the loop, only when asked for
                long gatedTiles = Math.round(skipped.item());
                skippedE = options.filterE() ? gatedTiles : 0;
                skippedC = options.filterC() ? gatedTiles : 0;
            } else if (gated) {
                skippedE = skippedC = -1; // not counted: reading the count would synchronise the device
            }
        } finally {
            temps.freeAll();
        }
        lastStats = new FilterStats(tiles, skippedE, skippedC);
        s.free();
    }

    /** Whether the filter is decided on the device (see {@link #deviceSideFiltering}). */
    private boolean gated(Tensor e) {
        return options.filtering() && (deviceFilter != null ? deviceFilter : e.device() instanceof Device.Cuda);
    }

    /**
     * Whether some (row block × vocabulary tile) could have every |d| below eps. A tile holding a valid row i has
     * |d_ij| ≥ p_ij for every column j (the target's |p − 1| is at least the other columns' sum, V ≥ 2), and
     * p_ij = exp(E_i·C_j − lse_i) ≥ exp(−‖E_i‖·max_j ‖C_j‖ − lse_i) by Cauchy–Schwarz. So when every row block has a
     * valid row whose bound clears eps — with a factor e and 0.1 % on the norms' product to spare for fp32 rounding —
     * no tile can be skipped. Costs one pass over C for its row norms (into the logit tile's buffer) and a few reads;
     * NaN anywhere answers "may be small", as the filter treats NaN as not small but must see it.
     */
    private static boolean someTileMayBeSmall(State s, long[] targets, double eps, int nb, Tensor scratch, Tensor one) {
        int n = s.e.dim(0);
        double cMax = maxRowNorm(s.c, scratch, one);
        if (!(cMax >= 0)) return true; // NaN somewhere, or V < 2: no bound
        float[] lse = s.lse.toFloatArray();
        Tensor flat = scratch.reshape((int) scratch.numel());
        for (int b0 = 0; b0 < n; b0 += nb) {
            int b1 = Math.min(n, b0 + nb);
            Tensor norms = flat.slice(0, 0, b1 - b0).reshape(b1 - b0, 1);
            s.e.ops().reduce(ReduceOp.NORM2, s.e.slice(0, b0, b1), 1, norms);
            if (!someRowKeepsEveryTile(norms.toFloatArray(), Arrays.copyOfRange(lse, b0, b1), Arrays.copyOfRange(targets, b0, b1), cMax, eps)) {
                return true;
            }
        }
        return false;
    }

    /**
     * max_j ‖C_j‖, the row norms computed a scratch-sized chunk of rows at a time into {@code scratch}; NaN when some norm
     * is NaN (and V &lt; 2, where no tile bound applies: "may be small").
     */
    static double maxRowNorm(Tensor c, Tensor scratch, Tensor one) {
        Ops ops = c.ops();
        int v = c.dim(0), chunk = (int) scratch.numel();
        if (v < 2) return Double.NaN;
        Tensor flat = scratch.reshape(chunk);
        double cMax = 0;
        for (int v0 = 0; v0 < v; v0 += chunk) {
            int v1 = Math.min(v, v0 + chunk);
            Tensor norms = flat.slice(0, 0, v1 - v0).reshape(v1 - v0, 1);
            ops.reduce(ReduceOp.NORM2, c.slice(0, v0, v1), 1, norms);
            ops.reduceAll(ReduceOp.MAX, norms, one);
            double m = one.item();
            if (!(m >= 0)) return Double.NaN;
            cMax = Math.max(cMax, m);
        }
        return cMax;
    }

    /**
     * Whether a block of rows surely has no tile below eps: some valid row i whose smallest possible probability,
     * exp(−‖E_i‖·max_j ‖C_j‖ − lse_i), clears eps with a factor e and 0.1 % on the norms' product to spare (see
     * {@link #someTileMayBeSmall}). A NaN bound (cMax) answers no.
     */
    static boolean someRowKeepsEveryTile(float[] eNorm, float[] lse, long[] targets, double cMax, double eps) {
        if (!(cMax >= 0)) return false;
        double floor = Math.log(eps) + 1;
        for (int i = 0; i < eNorm.length; i++) {
            if (targets[i] != IGNORE_INDEX && -eNorm[i] * cMax * 1.001 - lse[i] >= floor) return true;
        }
        return false;
    }

    /**
     * Adds Σ_i mask_i · (lse_i − E_i·C_{t_i}) over one block of rows into {@code loss}: the target logit as an indexed
     * dot, as the reference takes it (an ignored target gathers a zero row). {@code rows} (≥ block × D), {@code dot}
     * (≥ block) and {@code partial} are scratch.
     */
    static void addBlockNll(Tensor c, Tensor eb, Tensor targets, Tensor lseB, Tensor maskB, Tensor rows, Tensor dot,
                            Tensor partial, Tensor loss) {
        Ops ops = eb.ops();
        int rb = eb.dim(0);
        Tensor target = rows.slice(0, 0, rb), dt = dot.slice(0, 0, rb);
        ops.embedding(c, targets, target);
        ops.binary(BinaryOp.MUL, target, eb, target);
        ops.reduce(ReduceOp.SUM, target, 1, dt);
        ops.binary(BinaryOp.SUB, lseB, dt, dt);
        ops.binary(BinaryOp.MUL, dt, maskB.reshape(rb, 1), dt);
        ops.reduceAll(ReduceOp.SUM, dt, partial);
        ops.binary(BinaryOp.ADD, loss, partial, loss);
    }

    /**
     * The first rows × cols elements of the tile buffer as a contiguous [rows, cols] (a partial tile at the end of the
     * vocabulary or of the rows stays one block, so every kernel takes its contiguous path).
     */
    private static Tensor packed(Tensor tile, int rows, int cols) {
        return tile.reshape((int) tile.numel()).slice(0, 0, rows * cols).reshape(rows, cols);
    }
}
