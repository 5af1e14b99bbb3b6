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
        if (Fast.reduceLeading(op, x, d, out)) return;
        if (op == ReduceOp.LOGSUMEXP && d == x.rank() - 1 && LogSumExpRows.reduce(x, out)) return;
        if (d == x.rank() - 1 && Fast.reduceRows(op, x, out, false)) return;
        int len = x.dim(d);
        long step = x.stride(d);
        Buf bx = Buf.of(x), o = Buf.of(out);
        // Walk the output; x is aligned to it with the reduced dim collapsed (its index stays 0).
        long[] xs = x.strides();
        xs[d] = 0;
        long[][] st = {xs, out.strides()};
        long sx = Loop.inner(st[0]), so = Loop.inner(st[1]);
        Acc acc = new Acc(op);
        Loop.rows(out.dims(), st, new long[]{x.offset(), out.offset()}, (row, base, n) -> {
            for (int j = 0; j < n; j++) {
                acc.reset();
                long p = base[0] + j * sx;
                for (int k = 0; k < len; k++) acc.add(bx.get(p + k * step));
                o.set(base[1] + j * so, acc.result());
            }
        });
    }

    static void reduceAll(ReduceOp op, Tensor x, Tensor out) {
        if (Fast.reduceRows(op, x, out, true)) return;
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
