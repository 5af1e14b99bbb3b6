package dev.tally.models.loss;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;

/** Argument checks shared by the cross-entropy implementations, with messages naming the shapes. */
final class LossChecks {
    private LossChecks() {}

    static void check(Tensor e, Tensor c, Tensor targets, Tensor loss) {
        if (e.rank() != 2 || c.rank() != 2 || e.dim(1) != c.dim(1)) {
            throw new IllegalArgumentException("cross-entropy: hidden states " + e.shape() + " and classifier " + c.shape()
                    + " must be [N, D] and [V, D]");
        }
        if (targets.rank() != 1 || targets.dim(0) != e.dim(0) || (targets.dtype() != DType.I32 && targets.dtype() != DType.I64)) {
            throw new IllegalArgumentException("cross-entropy: targets " + targets.dtype() + targets.shape() + " must be I32/I64 ["
                    + e.dim(0) + "]");
        }
        if (loss.numel() != 1) throw new IllegalArgumentException("cross-entropy: loss output must have one element, got " + loss.shape());
    }
}
