package dev.tally.engine;

/**
 * Element types a tensor can hold. Byte sizes are what arenas book; bf16 and f16 are storage formats
 * whose arithmetic happens in fp32 (every kernel accumulates in fp32).
 */
public enum DType {
    F32(4, true, "F32"),
    BF16(2, true, "BF16"),
    F16(2, true, "F16"),
    I8(1, false, "I8"),
    U8(1, false, "U8"),
    I32(4, false, "I32"),
    I64(8, false, "I64");

    private final int byteSize;
    private final boolean floating;
    private final String safetensorsName;

    DType(int byteSize, boolean floating, String safetensorsName) {
        this.byteSize = byteSize;
        this.floating = floating;
        this.safetensorsName = safetensorsName;
    }

    public int byteSize() { return byteSize; }
    public boolean isFloating() { return floating; }
    /** The dtype string used in safetensors headers ("F32", "BF16", ...). */
    public String safetensorsName() { return safetensorsName; }

    /** Parses a dtype name case-insensitively ("f32", "bf16", "float32", "bfloat16", ...), with a clear error. */
    public static DType parse(String name) {
        String n = name.trim().toLowerCase(java.util.Locale.ROOT);
        return switch (n) {
            case "f32", "float32", "fp32", "float" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "f16", "float16", "fp16", "half" -> F16;
            case "i8", "int8" -> I8;
            case "u8", "uint8" -> U8;
            case "i32", "int32", "int" -> I32;
            case "i64", "int64", "long" -> I64;
            default -> throw new IllegalArgumentException(
                    "unknown dtype '" + name + "' (expected one of f32, bf16, f16, i8, u8, i32, i64)");
        };
    }

    /** bf16 bits → f32: the bf16 value is the high half of the f32 bit pattern. */
    public static float bf16ToF32(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * f32 → bf16 with round-to-nearest-even (the rounding PyTorch and CUDA's __float2bfloat16 use).
     * NaN stays a (quiet) NaN; overflow rounds to ±inf as IEEE rounding dictates.
     */
    public static short f32ToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) { // NaN: keep sign, force a quiet-NaN payload
            return (short) ((bits >>> 16) | 0x0040);
        }
        int lsb = (bits >>> 16) & 1;
        int rounded = bits + 0x7FFF + lsb;
        return (short) (rounded >>> 16);
    }

    /** f16 (IEEE binary16) bits → f32. */
    public static float f16ToF32(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** f32 → f16 with round-to-nearest-even. */
    public static short f32ToF16(float value) {
        return Float.floatToFloat16(value);
    }
}
