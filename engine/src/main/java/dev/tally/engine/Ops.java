package dev.tally.engine;

import dev.tally.engine.internal.Checks;

import java.lang.foreign.MemorySegment;

/**
 * The primitive op set every device implements with the same semantics (CPU is the reference, META checks shapes and
 * does nothing). Composite math (attention, losses, optimizer updates) lives above, built from these.
 *
 * <p>Conventions:
 * <ul>
 * <li>Destination passing: every output is a tensor the caller booked beforehand (memory is declared before use); no op
 * allocates device memory. Outputs are overwritten unless the method says it accumulates.</li>
 * <li>Inputs may be any strided view (transposed, sliced, expanded); outputs may be strided views but must not alias
 * inputs unless the method allows it (elementwise ops allow out == input exactly).</li>
 * <li>Floating inputs of any float dtype; arithmetic and accumulation in fp32 at least; results rounded to the output dtype
 * (bf16 round-to-nearest-even).</li>
 * <li>Shape errors are {@link IllegalArgumentException}s naming the op, the shapes and the tensors' labels
 * (see {@code dev.tally.engine.internal.Checks}); every backend calls it first.</li>
 * </ul>
 */
public interface Ops {
    Device device();

    // ---------------- data movement ----------------

    /** Every element of {@code out} = value. */
    void fill(Tensor out, double value);

    /** dst = src elementwise (same shape, or src broadcastable to dst); converts dtype (that is the cast op). */
    void copy(Tensor src, Tensor dst);

    /** Host → device: {@code src} holds dst.numel() values of dst.dtype, row-major contiguous. */
    void copyFromHost(MemorySegment src, Tensor dst);

    /** Device → host: writes src.numel() values of src.dtype, row-major contiguous, into {@code dst}. */
    void copyToHost(Tensor src, MemorySegment dst);

    // ---------------- elementwise ----------------

    /** out = f(x). */
    void unary(UnaryOp op, Tensor x, Tensor out);

    /** dx = dy · f'(x) (x is the forward input). */
    void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx);

    /** out = a ∘ b with numpy broadcasting: out's shape is the broadcast of a's and b's. */
    void binary(BinaryOp op, Tensor a, Tensor b, Tensor out);

    /** out = a ∘ s for a scalar s. */
    void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out);

    /** out = alpha·x + beta·y (x, y broadcastable to out); the workhorse of optimizer updates. */
    void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out);

    /**
     * out = cond ≠ 0 ? a : b, with cond, a, b broadcast to out. Unlike masking by multiplication it never lets a NaN or
     * infinity of the unselected side through (8-bit AdamW skips non-finite gradient elements this way).
     */
    void where(Tensor cond, Tensor a, Tensor b, Tensor out);

    /**
     * One Adam(W) update of weight {@code w} with gradient {@code g} and moments {@code m}, {@code v} (all the same
     * shape), as defined by {@link AdamStep}; updates w, m and v in place. It is defined as this composition of the
     * primitives above, which is what a backend without a fused kernel runs; {@code scratch} (w's shape, F32) holds the
     * step there and is left unspecified. A fused kernel must give the same bits as the composition (the CPU's reads
     * each element once instead of ten passes over the parameter).
     */
    default void adamStep(AdamStep s, Tensor w, Tensor g, Tensor m, Tensor v, Tensor scratch) {
        Checks.adamStep(device(), w, g, m, v, scratch);
        if (s.decayBefore() != 1) binaryScalar(BinaryOp.MUL, w, s.decayBefore(), w);
        axpby(s.beta1(), m, 1 - s.beta1(), g, m);
        unary(UnaryOp.SQUARE, g, scratch);
        axpby(s.beta2(), v, 1 - s.beta2(), scratch, v);
        unary(UnaryOp.SQRT, v, scratch);
        if (s.denominatorDivisor() != 1) binaryScalar(BinaryOp.DIV, scratch, s.denominatorDivisor(), scratch);
        binaryScalar(BinaryOp.ADD, scratch, s.eps(), scratch);
        binary(BinaryOp.DIV, m, scratch, scratch);
        binaryScalar(BinaryOp.MUL, scratch, s.stepSize(), scratch);
        axpby(1, w, -1, scratch, w);
        if (s.decayAfter() != 0) axpby(1, w, s.decayAfter(), w, w);
    }

    // ---------------- reductions ----------------

    /** Reduces {@code x} along {@code dim} into {@code out}, whose shape is x's with that dim set to 1 (keepdim). */
    void reduce(ReduceOp op, Tensor x, int dim, Tensor out);

    /** Reduces every element of {@code x} into the single element of {@code out}. */
    void reduceAll(ReduceOp op, Tensor x, Tensor out);

    // ---------------- neural-network primitives ----------------

    /**
     * Softmax over the last dim. With {@code causal}, x's last two dims are (R, C) and element [i, j] is masked
     * (probability 0) when j > i + (C − R).
     */
    void softmax(Tensor x, Tensor out, boolean causal);

    /** log-softmax over the last dim. */
    void logSoftmax(Tensor x, Tensor out);

    /** dx = y ∘ (dy − Σ_last(dy ∘ y)) given the softmax output y. */
    void softmaxBackward(Tensor y, Tensor dy, Tensor dx);

    /**
     * The gradient of cross-entropy with respect to the logits, in one pass over them: for logits [N, C],
     * out[n, j] = (exp(logits[n, j] − lse[n]) − [targets[n] − targetOffset == j]) · rowScale[n], the exponential in fp32.
     * The logits may be a tile of columns [targetOffset, targetOffset + C) of a wider vocabulary: a target outside the
     * tile (another tile's column, or an ignore_index) subtracts nothing. lse and rowScale hold one value per row ([N]
     * or [N, 1]; rowScale is typically mask · dLoss / count), targets are I32/I64 [N]. out may be logits itself.
     */
    void softmaxCrossEntropyGrad(Tensor logits, Tensor lse, Tensor targets, long targetOffset, Tensor rowScale, Tensor out);

    /**
     * RMSNorm over the last dim: out = x · rstd · weight, rstd = 1/sqrt(mean(x²) + eps). {@code rstd} (F32, shape = x's
     * shape without the last dim) receives the per-row rstd for backward; may be null.
     */
    void rmsNorm(Tensor x, Tensor weight, double eps, Tensor out, Tensor rstd);

    /** Gradients of RMSNorm given the saved rstd: writes dx, and (if non-null) dweight = Σ_rows dy ∘ x ∘ rstd. */
    void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight);

    /**
     * Rotary position embedding, HF LLaMA "rotate_half" layout: x is [..., T, H, Dh] (Dh even), pairs (i, i + Dh/2),
     * angle = (t + positionOffset) · base^(−2i/Dh) for i in [0, Dh/2). {@code inverse} rotates by −angle (the backward).
     */
    void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse);

    /**
     * Fused causal attention (flash-style: the [T, T] scores never exist in memory). q, k, v and out are [B, H, T, Dh]
     * views (any strides); out = softmax(scale · q kᵀ, causal) v, and {@code lse} (F32 [B, H, T]) receives each row's
     * log-sum-exp of the scaled scores, all backward needs besides the inputs: O(B·H·T) instead of the [B, H, T, T]
     * probabilities. Query i attends to keys j ≤ i. Devices without a kernel throw {@link UnsupportedOperationException}
     * (callers then use the materialized path).
     */
    void causalAttention(Tensor q, Tensor k, Tensor v, double scale, Tensor out, Tensor lse);

    /**
     * Gradients of {@link #causalAttention} given its out, lse and dout; <em>accumulates</em> into dq, dk, dv (all
     * [B, H, T, Dh]; any of them may be null to skip it), recomputing the probabilities tile by tile.
     */
    void causalAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dout, double scale,
                                 Tensor dq, Tensor dk, Tensor dv);

    /**
     * out[n, :] = table[ids[n], :] for ids (I32/I64, any shape N…) and table [V, D]; out is [N…, D]. Negative ids give 0.
     * An id ≥ V is an {@link IndexOutOfBoundsException} naming the op, the id, the ids' label and the table's shape and
     * label: thrown by the call on synchronous devices (CPU); on asynchronous devices (CUDA) an out-of-range id is
     * reported at the next synchronisation ({@link #synchronize()}, or a copy to or from the host such as
     * {@link Tensor#item()}), naming the call — the first failing one when several were queued — so that a loop of
     * lookups does not stall the device once per call; meanwhile its rows of out are written as 0.
     */
    void embedding(Tensor table, Tensor ids, Tensor out);

    /**
     * table[ids[n], :] += src[n, :] (accumulates; repeated ids add up; negative ids skipped). An id ≥ V is reported as by
     * {@link #embedding}: at the call on the CPU, at the next synchronisation on asynchronous devices (its rows are
     * skipped meanwhile).
     */
    void scatterAddRows(Tensor ids, Tensor src, Tensor table);

    /**
     * Stable ascending argsort of the vector {@code keys} (any float dtype, [n]): {@code order} (I32 [n], contiguous)
     * receives the indices of the keys from the smallest to the largest — in {@link Double#compare}'s order (−0 before
     * +0, NaN last), equal keys by index — and {@code rank} (I32 [n], contiguous; may be null) the inverse permutation,
     * rank[order[i]] = i. Computed where the keys are (Cut Cross-Entropy's vocabulary order needs no host read on a GPU).
     */
    void argsort(Tensor keys, Tensor order, Tensor rank);

    /** out[n] = x[n, ids[n]] for x [N, C]; ids outside [0, C) give 0 (tiles of a vocabulary, ignore_index). */
    void gatherColumns(Tensor x, Tensor ids, Tensor out);

    /** x[n, ids[n]] += src[n] for x [N, C]; ids outside [0, C) are skipped. */
    void scatterAddColumns(Tensor ids, Tensor src, Tensor x);

    // ---------------- linear algebra ----------------

    /**
     * out = alpha · a @ b + beta · out (beta = 0 ignores out's old contents, NaNs included). a is [..., m, k], b is
     * [..., k, n], out is [..., m, n]; batch dims of a and b broadcast to out's. Transposed operands are just views.
     * fp32 accumulation.
     */
    void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta);

    /**
     * Thin SVD in fp32 of a [m, n], k = min(m, n): u [m, k], s [k] (descending), vt [k, n]. Singular vectors are defined
     * up to sign; no sign convention is promised.
     */
    void svd(Tensor a, Tensor u, Tensor s, Tensor vt);

    // ---------------- random ----------------

    /**
     * Counter-based random numbers, the same stream on every backend: Philox-4x32-10 with key = seed (low, high 32 bits),
     * counter = (offset + i/4) as (lo, hi, 0, 0) for flattened element i, lane i % 4. UNIFORM uses
     * u = ((r >>> 8) + 0.5) · 2^-24; NORMAL uses Box–Muller on lane pairs (0,1) and (2,3):
     * z0 = sqrt(−2 ln u0)·cos(2π u1), z1 = sqrt(−2 ln u0)·sin(2π u1).
     */
    void random(Tensor out, Distribution dist, long seed, long offset, double a, double b);

    // ---------------- 8-bit block quantization ----------------

    /**
     * Block-wise dynamic quantization (bitsandbytes): for each block of {@code blockSize} elements of x (flattened),
     * absmax[b] = max |x|, q = index of the nearest entry of the sorted 256-entry {@code code} to x/absmax
     * (round to nearest by midpoint). With {@code signed}, a code whose sign differs from x's is moved one step toward it.
     */
    void quantizeBlockwise(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed);

    /** out = code[q] · absmax[block]. */
    void dequantizeBlockwise(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize);

    // ---------------- asymmetric group quantization (int8 weights, int4 projections) ----------------

    /**
     * Quantizes x (q.numel() elements, any float dtype, read flattened row-major) into {@code q}: per group of
     * q.groupSize() consecutive elements, in fp32, s = max(max − min, 1e-5) / L and z = clamp(−round(min / s), 0, L) with
     * L = 2^bits − 1, then code = clamp(round(x / s) + z, 0, L), where round is {@code rounding} (half-to-even, or
     * stochastic). Exactly Q-GaLore's {@code _quantize_tensor_int8} / {@code _quantize_stochastic_round} in float32.
     */
    void quantizeGroups(Tensor x, GroupRounding rounding, QuantizedTensor q);

    /** out = (code − z)·s per element, in fp32, rounded to out's dtype; out has q.numel() elements. */
    void dequantizeGroups(QuantizedTensor q, Tensor out);

    /**
     * Waits for queued work (no-op on CPU and META); device errors, and out-of-range ids of {@link #embedding} and
     * {@link #scatterAddRows}, surface here at the latest (as they do at any copy to or from the host).
     */
    default void synchronize() {}
}
