package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Tensor;

/**
 * Mean cross-entropy of the classifier logits E·Cᵀ (E: N×D hidden states, C: V×D classifier, no bias) over the targets
 * that are not {@link #IGNORE_INDEX}. Forward books what backward needs in the given LOSS arena; backward frees it.
 * Implementations differ in memory: {@link CrossEntropy} materializes N×V logits, {@link CutCrossEntropy} never does.
 */
public sealed interface LinearCrossEntropy permits CrossEntropy, CutCrossEntropy {
    int IGNORE_INDEX = -100;

    /** What forward keeps for backward (all in the LOSS arena). */
    interface Saved {
        /** Frees everything forward booked. */
        void free();
    }

    /** Writes the mean loss into {@code loss} (one F32 element). */
    Saved forward(Tensor e, Tensor c, Tensor targets, Tensor loss, MemoryArena arena);

    /**
     * For upstream gradient {@code dLoss} (one element): writes dE (N×D, overwritten) and <em>adds</em> the classifier's
     * gradient into dC (V×D, any float dtype), then frees the saved state. Adding lets the caller pass the classifier's
     * own gradient buffer, which accumulates over micro-batches anyway, instead of booking a V×D temporary and adding
     * that (the products take beta = 1; a zero-filled dC gets exactly the overwriting products' values, −0 aside). A
     * null dC (a frozen classifier) skips its products.
     */
    void backward(Saved saved, Tensor dLoss, Tensor dE, Tensor dC, MemoryArena arena);

    /**
     * Bytes the LOSS arena must hold at its peak for forward then backward on N rows, width D and vocabulary V, when it
     * is bump-allocated (every loss buffer is fp32, whatever the dtype of E and C, so the dtype does not enter). This is
     * the closed form of what {@link #forward} and {@link #backward} book, so a caller can size the arena before the
     * first step; the META device books the same bytes (tests hold the three equal).
     */
    long lossArenaBytes(int n, int d, int v);

    /** Which implementation, by the CLI's names. */
    static LinearCrossEntropy named(String name) {
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "ce" -> new CrossEntropy();
            case "cce" -> new CutCrossEntropy(CutCrossEntropy.Options.DEFAULT);
            case "cce_exact" -> new CutCrossEntropy(CutCrossEntropy.Options.EXACT);
            case "cce_fused" -> new CutCrossEntropy(CutCrossEntropy.Options.FUSED);
            default -> throw new IllegalArgumentException("unknown loss '" + name + "' (expected ce, cce, cce_exact or cce_fused)");
        };
    }
}
