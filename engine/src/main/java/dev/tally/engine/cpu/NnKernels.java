package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Row-wise neural-network primitives (softmax family, RMSNorm, RoPE); every row reduced in double, rows spread over the
 * CPU threads ({@link Loop#outputRows}: a row is one thread's work, so the split never changes a bit).
 */
final class NnKernels {
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private NnKernels() {}

    static void softmax(Tensor x, Tensor out, boolean causal) {
        if (ContiguousF32Kernels.softmax(x, out, false, causal)) return;
        Buf bx = Buf.of(x), o = Buf.of(out);
        long[][] st = {x.strides(), out.strides()};
        long sx = Loop.inner(st[0]), so = Loop.inner(st[1]);
        int rows = causal ? x.dim(-2) : 1;
        int cols = x.dim(-1);
        Loop.outputRows(out, new Tensor[] {x}, st, new long[]{x.offset(), out.offset()}, (row, base, n) -> {
            // causal: element j of row i is kept when j <= i + (C - R)
            int keep = causal ? (int) Math.max(0, Math.min(n, (row % rows) + (cols - rows) + 1)) : n;
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < keep; j++) m = Math.max(m, bx.get(base[0] + j * sx));
            double sum = 0;
            if (m == Double.NEGATIVE_INFINITY) {
                m = 0; // every kept input is -inf: 0/0 gives NaN as in PyTorch (a row with nothing kept is all 0)
            }
            for (int j = 0; j < keep; j++) sum += Math.exp(bx.get(base[0] + j * sx) - m);
            for (int j = 0; j < keep; j++) o.set(base[1] + j * so, Math.exp(bx.get(base[0] + j * sx) - m) / sum);
            for (int j = keep; j < n; j++) o.set(base[1] + j * so, 0.0);
        });
    }

    static void logSoftmax(Tensor x, Tensor out) {
        if (ContiguousF32Kernels.softmax(x, out, true, false)) return;
        Buf bx = Buf.of(x), o = Buf.of(out);
        long[][] st = {x.strides(), out.strides()};
        long sx = Loop.inner(st[0]), so = Loop.inner(st[1]);
        Loop.outputRows(out, new Tensor[] {x}, st, new long[]{x.offset(), out.offset()}, (row, base, n) -> {
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) m = Math.max(m, bx.get(base[0] + j * sx));
            if (m == Double.NEGATIVE_INFINITY || m == Double.POSITIVE_INFINITY) m = 0;
            double sum = 0;
            for (int j = 0; j < n; j++) sum += Math.exp(bx.get(base[0] + j * sx) - m);
            double lse = m + Math.log(sum);
            for (int j = 0; j < n; j++) o.set(base[1] + j * so, bx.get(base[0] + j * sx) - lse);
        });
    }

    static void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        if (ContiguousF32Kernels.softmaxBackward(y, dy, dx)) return;
        Buf by = Buf.of(y), bg = Buf.of(dy), o = Buf.of(dx);
        long[][] st = {y.strides(), dy.strides(), dx.strides()};
        long sy = Loop.inner(st[0]), sg = Loop.inner(st[1]), so = Loop.inner(st[2]);
        Loop.outputRows(dx, new Tensor[] {y, dy}, st, new long[]{y.offset(), dy.offset(), dx.offset()}, (row, base, n) -> {
            double dot = 0;
            for (int j = 0; j < n; j++) dot += by.get(base[0] + j * sy) * bg.get(base[1] + j * sg);
            for (int j = 0; j < n; j++) {
                double yj = by.get(base[0] + j * sy);
                o.set(base[2] + j * so, yj * (bg.get(base[1] + j * sg) - dot));
            }
        });
    }

    static void rmsNorm(Tensor x, Tensor w, double eps, Tensor out, Tensor rstd) {
        if (ContiguousF32Kernels.rmsNorm(x, w, eps, out, rstd) || ContiguousBf16Kernels.rmsNorm(x, w, eps, out, rstd)) return;
        Buf bx = Buf.of(x), bw = Buf.of(w), o = Buf.of(out);
        Buf br = rstd == null ? null : Buf.of(rstd);
        Loop.Flat rf = rstd == null ? null : new Loop.Flat(rstd);
        long sw = w.stride(0);
        long[][] st = {x.strides(), out.strides()};
        long sx = Loop.inner(st[0]), so = Loop.inner(st[1]);
        Loop.outputRows(out, new Tensor[] {x, w, rstd}, st, new long[]{x.offset(), out.offset()}, (row, base, n) -> {
            double ss = 0;
            for (int j = 0; j < n; j++) {
                double v = bx.get(base[0] + j * sx);
                ss += v * v;
            }
            // rstd is saved (and used) at fp32 precision, so forward and backward agree with the stored value
            float r = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (int j = 0; j < n; j++) {
                o.set(base[1] + j * so, bx.get(base[0] + j * sx) * r * bw.get(w.offset() + j * sw));
            }
            if (br != null) br.set(rf.at(row), r);
        });
    }

    static void rmsNormBackward(Tensor x, Tensor w, Tensor rstd, Tensor dy, Tensor dx, Tensor dw) {
        if (ContiguousF32Kernels.rmsNormBackward(x, w, rstd, dy, dx, dw) || ContiguousBf16Kernels.rmsNormBackward(x, w, rstd, dy, dx, dw)) return;
        Buf bx = Buf.of(x), bw = Buf.of(w), br = Buf.of(rstd), bg = Buf.of(dy), o = Buf.of(dx);
        Loop.Flat rf = new Loop.Flat(rstd);
        long sw = w.stride(0);
        int d = x.dim(-1);
        double[] dwAcc = dw == null ? null : new double[d];
        long[][] st = {x.strides(), dy.strides(), dx.strides()};
        long sx = Loop.inner(st[0]), sg = Loop.inner(st[1]), so = Loop.inner(st[2]);
        long[] offsets = {x.offset(), dy.offset(), dx.offset()};
        Loop.outputRows(dx, new Tensor[] {x, w, rstd, dy, dw}, st, offsets, (row, base, n) -> {
            double r = br.get(rf.at(row));
            // xhat = x·r, g = dy·w: dx = r·(g − xhat·mean(g·xhat))
            double dot = 0;
            for (int j = 0; j < n; j++) {
                double xh = bx.get(base[0] + j * sx) * r;
                double g = bg.get(base[1] + j * sg) * bw.get(w.offset() + j * sw);
                dot += g * xh;
            }
            double mean = dot / n;
            for (int j = 0; j < n; j++) {
                double xh = bx.get(base[0] + j * sx) * r;
                double g = bg.get(base[1] + j * sg) * bw.get(w.offset() + j * sw);
                o.set(base[2] + j * so, r * (g - xh * mean));
            }
        });
        if (dwAcc != null) {
            // dw sums over the rows in row order, each column by one thread: the columns are split, never the rows
            int tasks = (int) Math.max(1, Math.min(CpuThreads.count(), dx.numel() / (1 << 15)));
            CpuThreads.parallelFor(tasks, CpuThreads.count(), t -> {
                int j0 = (int) ((long) d * t / tasks), j1 = (int) ((long) d * (t + 1) / tasks);
                Loop.rows(dx.dims(), st, offsets, (row, base, n) -> {
                    double r = br.get(rf.at(row));
                    for (int j = j0; j < j1; j++) dwAcc[j] += bg.get(base[1] + j * sg) * (bx.get(base[0] + j * sx) * r);
                });
            });
        }
        if (dw != null) {
            Buf bd = Buf.of(dw);
            long sd = dw.stride(0);
            for (int j = 0; j < d; j++) bd.set(dw.offset() + j * sd, dwAcc[j]);
        }
    }

    static void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse) {
        Buf bx = Buf.of(x), o = Buf.of(out);
        int t = x.dim(-3), h = x.dim(-2), dh = x.dim(-1), half = dh / 2;
        double[] invFreq = new double[half];
        for (int i = 0; i < half; i++) invFreq[i] = Math.pow(base, -2.0 * i / dh);
        long[][] st = {x.strides(), out.strides()};
        long sx = Loop.inner(st[0]), so = Loop.inner(st[1]);
        double sign = inverse ? -1.0 : 1.0;
        // cos/sin once per (position, frequency), shared by every head and batch row at that position
        double[] cos = new double[t * half], sin = new double[t * half];
        for (int p = 0; p < t; p++) {
            for (int i = 0; i < half; i++) {
                double angle = ((long) p + positionOffset) * invFreq[i];
                cos[p * half + i] = Math.cos(angle);
                sin[p * half + i] = sign * Math.sin(angle);
            }
        }
        if (ropeContiguous(x, out, t, h, half, cos, sin)) return;
        Loop.outputRows(out, new Tensor[] {x}, st, new long[]{x.offset(), out.offset()}, (row, bases, n) -> {
            int p = (int) ((row / h) % t);
            for (int i = 0; i < half; i++) {
                double c = cos[p * half + i], s = sin[p * half + i];
                double x1 = bx.get(bases[0] + i * sx), x2 = bx.get(bases[0] + (i + half) * sx);
                o.set(bases[1] + i * so, x1 * c - x2 * s);
                o.set(bases[1] + (i + half) * so, x2 * c + x1 * s);
            }
        });
    }

    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    /** Floats in lanes of DS's count: converted to and from DS's doubles without changing the lane count. */
    private static final VectorSpecies<Float> FS = VectorSpecies.of(float.class, VectorShape.forBitSize(DS.length() * 32));

    /**
     * RoPE over contiguous F32 or bf16 tensors of one dtype: the element loop's arithmetic — each output x1·c − x2·s or
     * x2·c + x1·s in double from the stored values, then cast to float (and rounded to bf16 as {@link Buf#set} does) —
     * with double vectors, whose multiplies and adds round as Java's scalar ones do, so the bits are the loop's. bf16 rows
     * are widened to fp32 first (exact), fp32 rows read in place.
     */
    private static boolean ropeContiguous(Tensor x, Tensor out, int t, int h, int half, double[] cos, double[] sin) {
        DType dt = x.dtype();
        if ((dt != DType.F32 && dt != DType.BF16) || out.dtype() != dt || !x.isContiguous() || !out.isContiguous()) return false;
        int dh = 2 * half;
        long rows = x.numel() / dh;
        if (rows == 0) return true;
        boolean bf16 = dt == DType.BF16;
        MemorySegment sx = x.segment(), so = out.segment();
        long xo = x.offset(), oo = out.offset();
        int dl = DS.length();
        CpuThreads.parallelFor(ContiguousF32Kernels.chunks(rows, dh), CpuThreads.count(), chunk -> {
            MemorySegment xr = bf16 ? ContiguousBf16Kernels.stagingRow(0, dh) : null, or = bf16 ? ContiguousBf16Kernels.stagingRow(1, dh) : null;
            for (long r = ContiguousF32Kernels.chunkStart(rows, dh, chunk), r1 = ContiguousF32Kernels.chunkStart(rows, dh, chunk + 1); r < r1; r++) {
                MemorySegment in = sx, res = so;
                long ib = (xo + r * dh) * 4, ob = (oo + r * dh) * 4; // byte offsets of the fp32 row read and written
                if (bf16) {
                    Bf16Lanes.widenRow(sx, xo + r * dh, xr, 0, dh);
                    in = xr;
                    res = or;
                    ib = 0;
                    ob = 0;
                }
                int pb = (int) ((r / h) % t) * half;
                int i = 0;
                for (; i + dl <= half; i += dl) {
                    DoubleVector x1 = (DoubleVector) FloatVector.fromMemorySegment(FS, in, ib + 4L * i, NATIVE).convertShape(VectorOperators.F2D, DS, 0);
                    DoubleVector x2 = (DoubleVector) FloatVector.fromMemorySegment(FS, in, ib + 4L * (i + half), NATIVE).convertShape(VectorOperators.F2D, DS, 0);
                    DoubleVector c = DoubleVector.fromArray(DS, cos, pb + i), s = DoubleVector.fromArray(DS, sin, pb + i);
                    x1.mul(c).sub(x2.mul(s)).convertShape(VectorOperators.D2F, FS, 0).intoMemorySegment(res, ob + 4L * i, NATIVE);
                    x2.mul(c).add(x1.mul(s)).convertShape(VectorOperators.D2F, FS, 0).intoMemorySegment(res, ob + 4L * (i + half), NATIVE);
                }
                for (; i < half; i++) {
                    double c = cos[pb + i], s = sin[pb + i];
                    double x1 = in.get(ValueLayout.JAVA_FLOAT_UNALIGNED, ib + 4L * i), x2 = in.get(ValueLayout.JAVA_FLOAT_UNALIGNED, ib + 4L * (i + half));
                    res.set(ValueLayout.JAVA_FLOAT_UNALIGNED, ob + 4L * i, (float) (x1 * c - x2 * s));
                    res.set(ValueLayout.JAVA_FLOAT_UNALIGNED, ob + 4L * (i + half), (float) (x2 * c + x1 * s));
                }
                if (bf16) Bf16Lanes.narrowRow(res, 0, so, oo + r * dh, dh);
            }
        });
        return true;
    }
}
