package dev.tally.engine;

/**
 * A tensor stored as asymmetric unsigned integer codes per group (the int8 weights of Q-GaLore / Q-APOLLO, and with 4 bits
 * Q-GaLore's projection): the {@code shape} viewed row-major and flattened is cut into groups of {@code groupSize}
 * consecutive elements (the last one may be shorter); group k has a scale s[k] and a zero point z[k] (fp32, holding an
 * integer), and element x is represented by the code q with x ≈ (q − z)·s. For a weight [out, in] whose {@code in} is a
 * multiple of the group size (every paper config) a group is a run of one row, as the references define it.
 *
 * <p>Codes: 8 bits, one U8 per element ({@code codes} has {@code shape}); 4 bits, two codes per byte, element 2j in
 * the low nibble and 2j+1 in the high nibble ({@code codes} is U8 [⌈numel/2⌉]) — the references keep one 4-bit code per
 * byte; packing halves that memory.
 */
public record QuantizedTensor(Shape shape, int bits, int groupSize, Tensor codes, Tensor scales, Tensor zeros) {
    public QuantizedTensor {
        checkFormat(shape, bits, groupSize);
        long groups = groups(shape, groupSize);
        if (codes.dtype() != DType.U8 || codes.numel() != codeBytes(shape, bits)) {
            throw new IllegalArgumentException("quantized " + shape + " (" + bits + " bits): codes " + codes.dtype() + codes.shape()
                    + " should be " + codeBytes(shape, bits) + " U8 values");
        }
        for (Tensor t : new Tensor[] {scales, zeros}) {
            if (t.dtype() != DType.F32 || t.numel() != groups) {
                throw new IllegalArgumentException("quantized " + shape + " in groups of " + groupSize + ": " + t.label() + " "
                        + t.dtype() + t.shape() + " should be " + groups + " F32 values");
            }
        }
    }

    public static void checkFormat(Shape shape, int bits, int groupSize) {
        if (bits != 8 && bits != 4) throw new IllegalArgumentException("quantized tensors have 4 or 8 bits, got " + bits);
        if (groupSize < 1) throw new IllegalArgumentException("quantization group size must be >= 1, got " + groupSize);
        if (shape.numel() < 1) throw new IllegalArgumentException("cannot quantize an empty tensor " + shape);
    }

    public static long groups(Shape shape, int groupSize) { return (shape.numel() + groupSize - 1) / groupSize; }

    public static long codeBytes(Shape shape, int bits) { return bits == 8 ? shape.numel() : (shape.numel() + 1) / 2; }

    /** Bytes an arena books for codes, scales and zeros (each 256-byte aligned). */
    public static long bookedBytes(Shape shape, int bits, int groupSize) {
        long g = groups(shape, groupSize);
        return MemoryArena.alignUp(codeBytes(shape, bits)) + 2 * MemoryArena.alignUp(4 * g);
    }

    /** Books codes, scales and zeros in {@code arena} as "label", "label.scales", "label.zeros". */
    public static QuantizedTensor allocate(MemoryArena arena, String label, Shape shape, int bits, int groupSize) {
        checkFormat(shape, bits, groupSize);
        Tensor codes = bits == 8 ? arena.allocate(label, DType.U8, shape)
                : arena.allocate(label, DType.U8, Shape.of(Math.toIntExact(codeBytes(shape, bits))));
        int g = Math.toIntExact(groups(shape, groupSize));
        return new QuantizedTensor(shape, bits, groupSize, codes, arena.allocate(label + ".scales", DType.F32, g),
                arena.allocate(label + ".zeros", DType.F32, g));
    }

    public long numel() { return shape.numel(); }
    public Device device() { return codes.device(); }
    public Ops ops() { return codes.ops(); }

    /** x → codes, scales, zeros (scales and zeros refitted from each group's min and max). */
    public void quantize(Tensor x, GroupRounding rounding) { ops().quantizeGroups(x, rounding, this); }

    /** out = (q − z)·s. */
    public void dequantize(Tensor out) { ops().dequantizeGroups(this, out); }

    /** Frees codes, scales and zeros from their arena. */
    public void free() {
        for (Tensor t : new Tensor[] {zeros, scales, codes}) if (t.storage().isAlive()) t.arena().free(t);
    }
}
