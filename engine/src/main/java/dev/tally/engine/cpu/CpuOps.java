package dev.tally.engine.cpu;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.Checks;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;

import java.lang.foreign.MemorySegment;

/**
 * The reference backend. Generic strided loops (any view, any dtype) with double accumulation; matmul has its own
 * Vector API kernel ({@link CpuMatmul}). Each method validates through {@link Checks} first.
 */
final class CpuOps implements Ops {
    private static final Device CPU = Device.CPU;

    @Override public Device device() { return CPU; }

    // ---------------- data movement ----------------

    @Override public void fill(Tensor out, double value) {
        Checks.sameDevice("fill", CPU, out);
        Buf o = new Buf(out);
        Strided.rows(new Tensor[] {out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) o.set(offs[0] + j * inner[0], value);
        });
    }

    @Override public void copy(Tensor src, Tensor dst) {
        Checks.copy(CPU, src, dst);
        Tensor s = src.expand(dst.shape());
        Buf a = new Buf(s), o = new Buf(dst);
        boolean integral = !src.dtype().isFloating() && !dst.dtype().isFloating();
        Strided.rows(new Tensor[] {s, dst}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                if (integral) o.setLong(offs[1] + j * inner[1], a.getLong(offs[0] + j * inner[0]));
                else o.set(offs[1] + j * inner[1], a.get(offs[0] + j * inner[0]));
            }
        });
    }

    @Override public void copyFromHost(MemorySegment src, Tensor dst) {
        Checks.sameDevice("copyFromHost", CPU, dst);
        Buf o = new Buf(dst);
        long[] k = {0};
        int size = dst.dtype().byteSize();
        Strided.rows(new Tensor[] {dst}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                MemorySegment.copy(src, (k[0]++) * size, o.seg, (offs[0] + j * inner[0]) * size, size);
            }
        });
    }

    @Override public void copyToHost(Tensor src, MemorySegment dst) {
        Checks.sameDevice("copyToHost", CPU, src);
        Buf a = new Buf(src);
        long[] k = {0};
        int size = src.dtype().byteSize();
        Strided.rows(new Tensor[] {src}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                MemorySegment.copy(a.seg, (offs[0] + j * inner[0]) * size, dst, (k[0]++) * size, size);
            }
        });
    }

    // ---------------- elementwise ----------------

    @Override public void unary(UnaryOp op, Tensor x, Tensor out) {
        Checks.unary(CPU, op, x, out);
        Buf a = new Buf(x), o = new Buf(out);
        Strided.rows(new Tensor[] {x, out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) o.set(offs[1] + j * inner[1], Scalar.unary(op, a.get(offs[0] + j * inner[0])));
        });
    }

    @Override public void unaryBackward(UnaryOp op, Tensor x, Tensor dy, Tensor dx) {
        Checks.unaryBackward(CPU, op, x, dy, dx);
        Buf a = new Buf(x), g = new Buf(dy), o = new Buf(dx);
        Strided.rows(new Tensor[] {x, dy, dx}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                double d = Scalar.derivative(op, a.get(offs[0] + j * inner[0]));
                o.set(offs[2] + j * inner[2], g.get(offs[1] + j * inner[1]) * d);
            }
        });
    }

    @Override public void binary(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        Checks.binary(CPU, op, a, b, out);
        Tensor ae = a.expand(out.shape()), be = b.expand(out.shape());
        Buf x = new Buf(ae), y = new Buf(be), o = new Buf(out);
        Strided.rows(new Tensor[] {ae, be, out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                double r = Scalar.binary(op, x.get(offs[0] + j * inner[0]), y.get(offs[1] + j * inner[1]));
                o.set(offs[2] + j * inner[2], r);
            }
        });
    }

    @Override public void binaryScalar(BinaryOp op, Tensor a, double s, Tensor out) {
        Checks.binaryScalar(CPU, op, a, out);
        Buf x = new Buf(a), o = new Buf(out);
        Strided.rows(new Tensor[] {a, out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) o.set(offs[1] + j * inner[1], Scalar.binary(op, x.get(offs[0] + j * inner[0]), s));
        });
    }

    @Override public void axpby(double alpha, Tensor x, double beta, Tensor y, Tensor out) {
        Checks.axpby(CPU, x, y, out);
        Tensor xe = x.expand(out.shape()), ye = y.expand(out.shape());
        Buf a = new Buf(xe), b = new Buf(ye), o = new Buf(out);
        Strided.rows(new Tensor[] {xe, ye, out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                double r = alpha * a.get(offs[0] + j * inner[0]) + beta * b.get(offs[1] + j * inner[1]);
                o.set(offs[2] + j * inner[2], r);
            }
        });
    }

    @Override public void where(Tensor cond, Tensor a, Tensor b, Tensor out) {
        Checks.where(CPU, cond, a, b, out);
        Tensor ce = cond.expand(out.shape()), ae = a.expand(out.shape()), be = b.expand(out.shape());
        Buf c = new Buf(ce), x = new Buf(ae), y = new Buf(be), o = new Buf(out);
        Strided.rows(new Tensor[] {ce, ae, be, out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                boolean pick = c.get(offs[0] + j * inner[0]) != 0;
                o.set(offs[3] + j * inner[3], pick ? x.get(offs[1] + j * inner[1]) : y.get(offs[2] + j * inner[2]));
            }
        });
    }

    // ---------------- reductions ----------------

    /** Running state of one reduction, in double. */
    private static final class Acc {
        final ReduceOp op;
        double v, m = Double.NEGATIVE_INFINITY;
        long count;

        Acc(ReduceOp op) {
            this.op = op;
            v = switch (op) {
                case MAX -> Double.NEGATIVE_INFINITY;
                case MIN -> Double.POSITIVE_INFINITY;
                default -> 0.0;
            };
        }

        void add(double x) {
            count++;
            switch (op) {
                case SUM, MEAN -> v += x;
                case MAX -> v = (x > v || Double.isNaN(x)) ? x : v;
                case MIN -> v = (x < v || Double.isNaN(x)) ? x : v;
                case SUM_SQUARES, NORM2 -> v += x * x;
                case MAX_ABS -> v = Math.max(v, Math.abs(x));
                case LOGSUMEXP -> {
                    // streaming log-sum-exp: rescale the running sum when a new maximum appears
                    if (x > m) {
                        v = v * Math.exp(m - x) + 1.0;
                        m = x;
                    } else if (x != Double.NEGATIVE_INFINITY) {
                        v += Math.exp(x - m);
                    }
                }
            }
        }

        double result() {
            return switch (op) {
                case MEAN -> count == 0 ? Double.NaN : v / count;
                case NORM2 -> Math.sqrt(v);
                case LOGSUMEXP -> m == Double.NEGATIVE_INFINITY ? m : m + Math.log(v);
                default -> v;
            };
        }
    }

    @Override public void reduce(ReduceOp op, Tensor x, int dim, Tensor out) {
        Checks.reduce(CPU, op, x, dim, out);
        Tensor xt = x.transpose(dim, -1);
        Tensor ot = out.transpose(dim, -1).expand(xt.shape());
        Buf a = new Buf(xt), o = new Buf(ot);
        Strided.rows(new Tensor[] {xt, ot}, (offs, inner, n) -> {
            Acc acc = new Acc(op);
            for (int j = 0; j < n; j++) acc.add(a.get(offs[0] + j * inner[0]));
            o.set(offs[1], acc.result());
        });
    }

    @Override public void reduceAll(ReduceOp op, Tensor x, Tensor out) {
        Checks.reduceAll(CPU, op, x, out);
        Buf a = new Buf(x);
        Acc acc = new Acc(op);
        Strided.rows(new Tensor[] {x}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) acc.add(a.get(offs[0] + j * inner[0]));
        });
        new Buf(out).set(out.offset(), acc.result());
    }

    // ---------------- neural-network primitives ----------------

    @Override public void softmax(Tensor x, Tensor out, boolean causal) {
        Checks.softmax(CPU, "softmax", x, out, causal);
        Buf a = new Buf(x), o = new Buf(out);
        int rows = causal ? x.dim(-2) : 1;
        int shift = causal ? x.dim(-1) - x.dim(-2) : 0;
        long[] count = {0};
        Strided.rows(new Tensor[] {x, out}, (offs, inner, n) -> {
            int i = (int) (count[0]++ % rows);
            int valid = causal ? Math.max(0, Math.min(n, i + shift + 1)) : n;
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < valid; j++) m = Math.max(m, a.get(offs[0] + j * inner[0]));
            double s = 0;
            for (int j = 0; j < valid; j++) s += Math.exp(a.get(offs[0] + j * inner[0]) - m);
            for (int j = 0; j < n; j++) {
                double p = j < valid ? Math.exp(a.get(offs[0] + j * inner[0]) - m) / s : 0.0;
                o.set(offs[1] + j * inner[1], p);
            }
        });
    }

    @Override public void logSoftmax(Tensor x, Tensor out) {
        Checks.softmax(CPU, "logSoftmax", x, out, false);
        Buf a = new Buf(x), o = new Buf(out);
        Strided.rows(new Tensor[] {x, out}, (offs, inner, n) -> {
            Acc lse = new Acc(ReduceOp.LOGSUMEXP);
            for (int j = 0; j < n; j++) lse.add(a.get(offs[0] + j * inner[0]));
            double l = lse.result();
            for (int j = 0; j < n; j++) o.set(offs[1] + j * inner[1], a.get(offs[0] + j * inner[0]) - l);
        });
    }

    @Override public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        Checks.softmaxBackward(CPU, y, dy, dx);
        Buf p = new Buf(y), g = new Buf(dy), o = new Buf(dx);
        Strided.rows(new Tensor[] {y, dy, dx}, (offs, inner, n) -> {
            double dot = 0;
            for (int j = 0; j < n; j++) dot += p.get(offs[0] + j * inner[0]) * g.get(offs[1] + j * inner[1]);
            for (int j = 0; j < n; j++) {
                double yj = p.get(offs[0] + j * inner[0]);
                o.set(offs[2] + j * inner[2], yj * (g.get(offs[1] + j * inner[1]) - dot));
            }
        });
    }

    private static void requireContiguous(String op, Tensor t) {
        if (t != null && !t.isContiguous()) {
            throw new IllegalArgumentException(op + ": " + t + " must be contiguous");
        }
    }

    @Override public void rmsNorm(Tensor x, Tensor weight, double eps, Tensor out, Tensor rstd) {
        Checks.rmsNorm(CPU, x, weight, out, rstd);
        requireContiguous("rmsNorm rstd", rstd);
        Buf a = new Buf(x), w = new Buf(weight), o = new Buf(out);
        Buf r = rstd == null ? null : new Buf(rstd);
        long ws = weight.stride(0), wo = weight.offset();
        long[] count = {0};
        Strided.rows(new Tensor[] {x, out}, (offs, inner, n) -> {
            double ss = 0;
            for (int j = 0; j < n; j++) {
                double v = a.get(offs[0] + j * inner[0]);
                ss += v * v;
            }
            // rstd is rounded to fp32 before use, as the saved value backward will see
            float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (int j = 0; j < n; j++) {
                o.set(offs[1] + j * inner[1], a.get(offs[0] + j * inner[0]) * inv * w.get(wo + j * ws));
            }
            if (r != null) r.set(rstd.offset() + count[0], inv);
            count[0]++;
        });
    }

    @Override public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        Checks.rmsNormBackward(CPU, x, weight, rstd, dy, dx, dweight);
        requireContiguous("rmsNormBackward rstd", rstd);
        Buf a = new Buf(x), w = new Buf(weight), r = new Buf(rstd), g = new Buf(dy), o = new Buf(dx);
        int d = x.dim(-1);
        double[] dw = new double[d];
        long ws = weight.stride(0), wo = weight.offset();
        long[] count = {0};
        Strided.rows(new Tensor[] {x, dy, dx}, (offs, inner, n) -> {
            double inv = r.get(rstd.offset() + count[0]++);
            double dot = 0;
            for (int j = 0; j < n; j++) {
                double xh = a.get(offs[0] + j * inner[0]) * inv;
                double gy = g.get(offs[1] + j * inner[1]);
                dot += gy * w.get(wo + j * ws) * xh;
                dw[j] += gy * xh;
            }
            dot /= n;
            for (int j = 0; j < n; j++) {
                double xh = a.get(offs[0] + j * inner[0]) * inv;
                double gw = g.get(offs[1] + j * inner[1]) * w.get(wo + j * ws);
                o.set(offs[2] + j * inner[2], inv * (gw - xh * dot));
            }
        });
        if (dweight != null) {
            Buf dwb = new Buf(dweight);
            for (int j = 0; j < d; j++) dwb.set(dweight.offset() + j * dweight.stride(0), dw[j]);
        }
    }

    @Override public void rope(Tensor x, Tensor out, int positionOffset, double base, boolean inverse) {
        Checks.rope(CPU, x, out);
        int heads = x.dim(-2), seq = x.dim(-3), dh = x.dim(-1), half = dh / 2;
        double[] freq = new double[half];
        for (int i = 0; i < half; i++) freq[i] = Math.pow(base, -2.0 * i / dh);
        Buf a = new Buf(x), o = new Buf(out);
        long[] count = {0};
        double sign = inverse ? -1.0 : 1.0;
        Strided.rows(new Tensor[] {x, out}, (offs, inner, n) -> {
            long row = count[0]++;
            int t = (int) ((row / heads) % seq);
            double pos = t + positionOffset;
            for (int i = 0; i < half; i++) {
                // angles in fp32, as HF computes cos/sin tables in fp32
                float ang = (float) (pos * (float) freq[i]);
                double c = Math.cos(ang), s = sign * Math.sin(ang);
                double x1 = a.get(offs[0] + i * inner[0]), x2 = a.get(offs[0] + (i + half) * inner[0]);
                o.set(offs[1] + i * inner[1], x1 * c - x2 * s);
                o.set(offs[1] + (i + half) * inner[1], x2 * c + x1 * s);
            }
        });
    }

    /** Ids of any integral view in row-major order. */
    private static long[] ids(Tensor ids) {
        long[] out = new long[Math.toIntExact(ids.numel())];
        Buf b = new Buf(ids);
        int[] k = {0};
        Strided.rows(new Tensor[] {ids}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) out[k[0]++] = b.getLong(offs[0] + j * inner[0]);
        });
        return out;
    }

    private static void checkRow(String op, long id, Tensor table) {
        if (id >= table.dim(0)) {
            throw new IndexOutOfBoundsException(op + ": id " + id + " out of range for table " + table.shape() + " (" + table.label() + ")");
        }
    }

    @Override public void embedding(Tensor table, Tensor idsT, Tensor out) {
        Checks.embedding(CPU, table, idsT, out);
        long[] id = ids(idsT);
        for (long v : id) checkRow("embedding", v, table);
        Buf t = new Buf(table), o = new Buf(out);
        long ts0 = table.stride(0), ts1 = table.stride(1), to = table.offset();
        int[] k = {0};
        Strided.rows(new Tensor[] {out}, (offs, inner, n) -> {
            long row = id[k[0]++];
            for (int j = 0; j < n; j++) {
                o.set(offs[0] + j * inner[0], row < 0 ? 0.0 : t.get(to + row * ts0 + j * ts1));
            }
        });
    }

    @Override public void scatterAddRows(Tensor idsT, Tensor src, Tensor table) {
        Checks.scatterAddRows(CPU, idsT, src, table);
        long[] id = ids(idsT);
        for (long v : id) checkRow("scatterAddRows", v, table);
        Buf s = new Buf(src), t = new Buf(table);
        long ts0 = table.stride(0), ts1 = table.stride(1), to = table.offset();
        int[] k = {0};
        Strided.rows(new Tensor[] {src}, (offs, inner, n) -> {
            long row = id[k[0]++];
            if (row < 0) return;
            for (int j = 0; j < n; j++) {
                long at = to + row * ts0 + j * ts1;
                t.set(at, t.get(at) + s.get(offs[0] + j * inner[0]));
            }
        });
    }

    @Override public void gatherColumns(Tensor x, Tensor idsT, Tensor out) {
        Checks.columns(CPU, "gatherColumns", x, idsT, out);
        long[] id = ids(idsT);
        Buf a = new Buf(x), o = new Buf(out);
        int c = x.dim(1);
        for (int r = 0; r < id.length; r++) {
            double v = id[r] >= 0 && id[r] < c ? a.get(x.offset() + r * x.stride(0) + id[r] * x.stride(1)) : 0.0;
            o.set(out.offset() + r * out.stride(0), v);
        }
    }

    @Override public void scatterAddColumns(Tensor idsT, Tensor src, Tensor x) {
        Checks.columns(CPU, "scatterAddColumns", x, idsT, src);
        long[] id = ids(idsT);
        Buf s = new Buf(src), a = new Buf(x);
        int c = x.dim(1);
        for (int r = 0; r < id.length; r++) {
            if (id[r] < 0 || id[r] >= c) continue;
            long at = x.offset() + r * x.stride(0) + id[r] * x.stride(1);
            a.set(at, a.get(at) + s.get(src.offset() + r * src.stride(0)));
        }
    }

    // ---------------- linear algebra ----------------

    @Override public void matmul(Tensor a, Tensor b, Tensor out, double alpha, double beta) {
        Checks.matmul(CPU, a, b, out);
        CpuMatmul.matmul(a, b, out, alpha, beta);
    }

    @Override public void svd(Tensor a, Tensor u, Tensor s, Tensor vt) {
        Checks.svd(CPU, a, u, s, vt);
        JacobiSvd.svd(a, u, s, vt);
    }

    // ---------------- random ----------------

    @Override public void random(Tensor out, Distribution dist, long seed, long offset, double a, double b) {
        Checks.random(CPU, out);
        Buf o = new Buf(out);
        int k0 = (int) seed, k1 = (int) (seed >>> 32);
        long[] i = {0};
        Strided.rows(new Tensor[] {out}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) {
                long e = i[0]++;
                long ctr = offset + e / 4;
                int lane = (int) (e & 3);
                int[] r = Philox.block((int) ctr, (int) (ctr >>> 32), 0, 0, k0, k1);
                double v;
                if (dist == Distribution.UNIFORM) {
                    v = a + (b - a) * Philox.uniform(r[lane]);
                } else {
                    int pair = lane & 2;
                    double u0 = Philox.uniform(r[pair]), u1 = Philox.uniform(r[pair + 1]);
                    double rad = Math.sqrt(-2.0 * Math.log(u0));
                    double z = (lane & 1) == 0 ? rad * Math.cos(2 * Math.PI * u1) : rad * Math.sin(2 * Math.PI * u1);
                    v = a + b * z;
                }
                o.set(offs[0] + j * inner[0], v);
            }
        });
    }

    // ---------------- 8-bit block quantization ----------------

    @Override public void quantizeBlockwise(Tensor x, Tensor code, Tensor absmax, Tensor q, int blockSize, boolean signed) {
        Checks.quantize(CPU, x, code, absmax, q, blockSize);
        BlockQuant.quantize(flat(x), code.toFloatArray(), absmax, q, blockSize, signed);
    }

    @Override public void dequantizeBlockwise(Tensor q, Tensor code, Tensor absmax, Tensor out, int blockSize) {
        Checks.dequantize(CPU, q, code, absmax, out, blockSize);
        BlockQuant.dequantize(q, code.toFloatArray(), absmax, out, blockSize);
    }

    /** Row-major values of any view as float (block quantization works on flattened tensors). */
    private static float[] flat(Tensor t) {
        float[] out = new float[Math.toIntExact(t.numel())];
        Buf b = new Buf(t);
        int[] k = {0};
        Strided.rows(new Tensor[] {t}, (offs, inner, n) -> {
            for (int j = 0; j < n; j++) out[k[0]++] = b.get(offs[0] + j * inner[0]);
        });
        return out;
    }

    static Shape shapeOf(int... d) { return Shape.of(d); }

    static boolean isF32Contiguous(Tensor t) { return t.dtype() == DType.F32 && t.isContiguous(); }
}
