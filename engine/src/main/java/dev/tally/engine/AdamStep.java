package dev.tally.engine;

/**
 * The scalars of one Adam(W) update, folded by the optimizer so that one definition serves both flavours the
 * literature's code uses (torch.optim.AdamW and the HF AdamW inside GaLore/APOLLO). {@link Ops#adamStep} applies, per
 * element:
 * <pre>
 *   w ← w · decayBefore                      (skipped when decayBefore = 1)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   d ← stepSize · m / (√v / denominatorDivisor + eps)   (the division skipped when denominatorDivisor = 1)
 *   w ← w − d
 *   w ← w + decayAfter · w                   (skipped when decayAfter = 0)
 * </pre>
 *
 * @param beta1 first-moment decay β1
 * @param beta2 second-moment decay β2
 * @param eps added to the denominator
 * @param denominatorDivisor √(1 − β2^t) for torch's bias-corrected denominator; 1 for the HF flavour
 * @param stepSize the learning rate with the bias corrections folded in
 * @param decayBefore torch's decoupled weight decay factor 1 − lr·wd, applied before the update (1: none)
 * @param decayAfter the HF flavour's −lr·wd, applied to the updated weight (0: none)
 */
public record AdamStep(double beta1, double beta2, double eps, double denominatorDivisor, double stepSize,
                       double decayBefore, double decayAfter) {
    public AdamStep {
        if (!(denominatorDivisor > 0)) throw new IllegalArgumentException("AdamStep: denominatorDivisor must be > 0, got " + denominatorDivisor);
    }
}
