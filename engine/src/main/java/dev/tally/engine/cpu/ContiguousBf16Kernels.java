package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Vector paths for contiguous bf16 operands.
 *
 * <p>Unary ops and their backward with a vector form (SILU, SIGMOID, EXP, …) widen a chunk to fp32, run the fp32 kernel
 * over it and round the result to bf16: exactly bf16(f32 kernel(widened x)), the fp32 kernel's arithmetic (its own e^x)
 * in place of the element loop's double (Math.exp), as contiguous fp32 tensors already have it. Chunks are whole vectors,
 * so only the tensor's last n mod L elements take the kernel's scalar tail, as they would over the whole widened tensor.
 *
 * <p>ADD, SUB, MUL and DIV (the residual adds, SwiGLU's products and their gradients in
 * bf16 training), same shapes or b a row repeated over a's leading dims. They give the generic kernel's bits: it
 * computes in double and rounds to fp32, then to bf16; for one +, −, × or ÷ of two floats, double's 53 bits are enough
 * that rounding to double first changes nothing (53 ≥ 2·24 + 2), so the fp32 operation on the widened values gives the
 * same float, which is then rounded to bf16 as {@link DType#f32ToBf16} does. Each loop is written out in full: a helper
 * that returns a vector is boxed wherever C2 does not inline it.
 */
final class ContiguousBf16Kernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final VectorSpecies<Short> HALF = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, S.vectorShape());
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    /** Elements widened at a time: a multiple of L and a divisor of the element split's chunk. */
    private static final int STAGE = 4096;
    private static final ThreadLocal<MemorySegment[]> STAGING = ThreadLocal.withInitial(
            () -> new MemorySegment[] {MemorySegment.ofArray(new float[STAGE]), MemorySegment.ofArray(new float[STAGE])});

    static {
        if (STAGE % L != 0 || ContiguousF32Kernels.ELEMENT_CHUNK % STAGE != 0) throw new AssertionError("staging chunk " + STAGE);
    }

    private ContiguousBf16Kernels() {}

    private static boolean bf16(Tensor... ts) {
        for (Tensor t : ts) if (t.dtype() != DType.BF16 || !t.isContiguous()) return false;
        return true;
    }

    static boolean unary(UnaryOp op, Tensor x, Tensor out) {
        if (!ContiguousF32Kernels.vectorUnary(op) || !bf16(x, out) || !Loop.rowsIndependent(out, x)) return false;
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        ContiguousF32Kernels.forElements(out.numel(), (lo, hi) -> {
            MemorySegment t = STAGING.get()[0];
            for (long c = lo; c < hi; c += STAGE) {
                int len = (int) Math.min(STAGE, hi - c);
                Bf16Lanes.widenRow(sx, xo + c, t, 0, len);
                ContiguousF32Kernels.unaryRange(op, t, 0, t, 0, 0, len);
                Bf16Lanes.narrowRow(t, 0, so, oo + c, len);
            }
        });
        return true;
    }

    static boolean unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        if (!ContiguousF32Kernels.vectorUnaryBackward(op) || !bf16(x, dy, dx) || !Loop.rowsIndependent(dx, x, dy)) return false;
        MemorySegment sx = x.segment(), sg = dy.segment(), so = dx.segment();
        long xo = x.offset(), go = dy.offset(), oo = dx.offset();
        ContiguousF32Kernels.forElements(dx.numel(), (lo, hi) -> {
            MemorySegment[] t = STAGING.get();
            for (long c = lo; c < hi; c += STAGE) {
                int len = (int) Math.min(STAGE, hi - c);
                Bf16Lanes.widenRow(sx, xo + c, t[0], 0, len);
                Bf16Lanes.widenRow(sg, go + c, t[1], 0, len);
                ContiguousF32Kernels.unaryBackwardRange(op, t[0], 0, t[1], 0, t[0], 0, 0, len);
                Bf16Lanes.narrowRow(t[0], 0, so, oo + c, len);
            }
        });
        return true;
    }

    static boolean binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        switch (op) {
            case ADD, SUB, MUL, DIV -> { }
            default -> { return false; }
        }
        for (Tensor t : new Tensor[] {a, b, out}) if (t.dtype() != DType.BF16 || !t.isContiguous()) return false;
        if (!a.shape().equals(out.shape())) return false;
        long n = out.numel(), bn = b.numel();
        boolean same = b.shape().equals(out.shape());
        boolean row = !same && out.rank() >= 1 && bn == out.dim(-1) && (b.rank() == 0 || b.dim(-1) == bn);
        if (!(same || row) || !Loop.rowsIndependent(out, a, b)) return false;
        if (n == 0 || bn == 0) return true;
        MemorySegment sa = a.segment(), sb = b.segment(), so = out.segment();
        long ao = a.offset(), bo = b.offset(), oo = out.offset();
        if (same) {
            ContiguousF32Kernels.forElements(n, (lo, hi) -> run(op, sa, ao + lo, sb, bo + lo, so, oo + lo, (int) (hi - lo)));
            return true;
        }
        long periods = n / bn;
        int cols = (int) bn;
        int tasks = (int) Math.max(1, Math.min(periods, n / (1 << 16)));
        CpuThreads.parallelFor(tasks, CpuThreads.count(), t -> {
            for (long p = periods * t / tasks, end = periods * (t + 1) / tasks; p < end; p++) {
                run(op, sa, ao + p * cols, sb, bo, so, oo + p * cols, cols);
            }
        });
        return true;
    }

    /** out[o0 + i] = a[a0 + i] ∘ b[b0 + i] for i in [0, len). */
    private static void run(BinaryOp op, MemorySegment sa, long a0, MemorySegment sb, long b0, MemorySegment so, long o0, int len) {
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector x = ((IntVector) ShortVector.fromMemorySegment(HALF, sa, (a0 + i) * 2, NATIVE).convertShape(VectorOperators.S2I, INTS, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector y = ((IntVector) ShortVector.fromMemorySegment(HALF, sb, (b0 + i) * 2, NATIVE).convertShape(VectorOperators.S2I, INTS, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector r = switch (op) {
                case ADD -> x.add(y);
                case SUB -> x.sub(y);
                case MUL -> x.mul(y);
                default -> x.div(y);
            };
            IntVector bits = r.reinterpretAsInts();
            IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF);
            VectorMask<Integer> nan = bits.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
            IntVector top = rounded.blend(bits.or(0x00400000), nan).lanewise(VectorOperators.LSHR, 16);
            ((ShortVector) top.convertShape(VectorOperators.I2S, HALF, 0)).intoMemorySegment(so, (o0 + i) * 2, NATIVE);
        }
        for (; i < len; i++) {
            double x = DType.bf16ToF32(sa.getAtIndex(Buf.S, a0 + i)), y = DType.bf16ToF32(sb.getAtIndex(Buf.S, b0 + i));
            so.setAtIndex(Buf.S, o0 + i, DType.f32ToBf16((float) Elementwise.binary(op, x, y)));
        }
    }
}
