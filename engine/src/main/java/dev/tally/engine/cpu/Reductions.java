package dev.tally.engine.cpu;

import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;

/** Reductions along one dimension or over everything, accumulated in double. */
final class Reductions {
    private Reductions() {}

    /** Running state of one reduction. */
    private static final class Acc {
        final ReduceOp op;
        double v, m = Double.NEGATIVE_INFINITY;
        long count;

        Acc(ReduceOp op) {
            this.op = op;
            reset();
        }

        void reset() {
            count = 0;
            m = Double.NEGATIVE_INFINITY;
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
                case MAX -> v = (x > v || x != x) && v == v ? x : v;
                case MIN -> v = (x < v || x != x) && v == v ? x : v;
                case SUM_SQUARES, NORM2 -> v += x * x;
                case MAX_ABS -> {
                    double a = Math.abs(x);
                    v = (a > v || a != a) && v == v ? a : v;
                }
                case LOGSUMEXP -> {
                    // online log-sum-exp: v = Σ exp(x - m) with running max m
                    if (x != x || m != m) {
                        m = Double.NaN;
                    } else if (x > m) {
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
                case MEAN -> v / count;
                case NORM2 -> Math.sqrt(v);
                case LOGSUMEXP -> {
                    if (m != m) yield Double.NaN;
                    if (m == Double.NEGATIVE_INFINITY || m == Double.POSITIVE_INFINITY) yield m;
                    yield m + Math.log(v);
                }
                default -> v;
            };
        }
    }

    static void reduce(ReduceOp op, Tensor x, int dim, Tensor out) {
        int d = x.shape().normalize(dim);
        if (ContiguousF32Kernels.reduceLeading(op, x, d, out)) return;
        if (op == ReduceOp.LOGSUMEXP && d == x.rank() - 1 && LogSumExpRows.reduce(x, out)) return;
        if (d == x.rank() - 1 && ContiguousF32Kernels.reduceRows(op, x, out, false)) return;
        int len = x.dim(d);
        long step = x.stride(d);
        Buf bx = Buf.of(x), o = Buf.of(out);
        // Walk the output; x is aligned to it with the reduced dim collapsed (its index stays 0).
        long[] xs = x.strides();
        xs[d] = 0;
        long[][] st = {xs, out.strides()};
        long sx = Loop.inner(st[0]), so = Loop.inner(st[1]);
        // each output element is one thread's reduction in index order: the rows of out can go to the threads
        Loop.outputRows(out, new Tensor[] {x}, st, new long[]{x.offset(), out.offset()}, (row, base, n) -> {
            Acc acc = new Acc(op);
            for (int j = 0; j < n; j++) {
                acc.reset();
                long p = base[0] + j * sx;
                for (int k = 0; k < len; k++) acc.add(bx.get(p + k * step));
                o.set(base[1] + j * so, acc.result());
            }
        }, len);
    }

    /**
     * MAX_ABS of a contiguous bf16 tensor (the trainer's finite check of bf16 weights and gradients, which took the
     * element-by-element path): on the bits, since a bf16 magnitude orders as its 15 low bits do — exact, so the same
     * result as that path in any order, NaN anywhere giving NaN.
     */
    private static boolean bf16MaxAbs(Tensor x, Tensor out) {
        if (x.dtype() != dev.tally.engine.DType.BF16 || !x.isContiguous() || x.numel() == 0) return false;
        java.lang.foreign.MemorySegment sx = x.segment();
        long xo = x.offset(), n = x.numel();
        int[] partial = new int[(int) ((n + ContiguousF32Kernels.ELEMENT_CHUNK - 1) / ContiguousF32Kernels.ELEMENT_CHUNK)];
        ContiguousF32Kernels.forElements(n, (lo, hi) -> {
            int max = 0;
            for (long i = lo; i < hi; i++) max = Math.max(max, sx.getAtIndex(Buf.S, xo + i) & 0x7FFF);
            partial[(int) (lo / ContiguousF32Kernels.ELEMENT_CHUNK)] = max;
        });
        int max = 0;
        for (int p : partial) max = Math.max(max, p);
        // above 0x7F80 is a NaN (0x7F80 itself is infinity)
        Buf.of(out).set(out.offset(), max > 0x7F80 ? Double.NaN : dev.tally.engine.DType.bf16ToF32((short) max));
        return true;
    }

    static void reduceAll(ReduceOp op, Tensor x, Tensor out) {
        if (ContiguousF32Kernels.reduceRows(op, x, out, true)) return;
        if (op == ReduceOp.MAX_ABS && bf16MaxAbs(x, out)) return;
        Buf bx = Buf.of(x);
        Acc acc = new Acc(op);
        long[][] st = {x.strides()};
        long sx = Loop.inner(st[0]);
        Loop.rows(x.dims(), st, new long[]{x.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) acc.add(bx.get(base[0] + j * sx));
        });
        Buf.of(out).set(out.offset(), acc.result());
    }
}
