package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/**
 * Row-wise neural-network primitives (softmax family, RMSNorm, RoPE); every row reduced in double, rows spread over the
 * CPU threads ({@link Loop#outputRows}: a row is one thread's work, so the split never changes a bit).
 */
final class NnKernels {
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
}
