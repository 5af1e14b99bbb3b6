package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.tally.engine.testing.Reference.assertClose;
import static dev.tally.engine.testing.Reference.round;

/** reduce (every dim) and reduceAll for every ReduceOp against double references. */
class ReductionOpsTest {
    /** The shared shapes plus a rank 3 whose every dim is a different odd length, so a mixed-up dim shows. */
    private static final Shape[] SHAPES = java.util.stream.Stream.concat(java.util.Arrays.stream(Cases.SHAPES),
            java.util.stream.Stream.of(Shape.of(3, 5, 7))).toArray(Shape[]::new);

    static double reduceRef(ReduceOp op, double[] v) {
        double acc = switch (op) {
            case MAX -> Double.NEGATIVE_INFINITY;
            case MIN -> Double.POSITIVE_INFINITY;
            default -> 0;
        };
        double m = Double.NEGATIVE_INFINITY;
        for (double x : v) m = Math.max(m, x);
        for (double x : v) {
            acc = switch (op) {
                case SUM, MEAN -> acc + x;
                case MAX -> Math.max(acc, x);
                case MIN -> Math.min(acc, x);
                case SUM_SQUARES, NORM2 -> acc + x * x;
                case MAX_ABS -> Math.max(acc, Math.abs(x));
                case LOGSUMEXP -> acc + Math.exp(x - m);
            };
        }
        return switch (op) {
            case MEAN -> acc / v.length;
            case NORM2 -> Math.sqrt(acc);
            case LOGSUMEXP -> m + Math.log(acc);
            default -> acc;
        };
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void reduceAlongEachDim(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(21);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : SHAPES) {
                int n = Cases.numel(shape);
                double[] x = round(dt, r.normal(n, 3));
                Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                for (int dim = 0; dim < shape.rank(); dim++) {
                    int[] od = shape.toArray();
                    od[dim] = 1;
                    Shape os = Shape.of(od);
                    for (ReduceOp op : ReduceOp.values()) {
                        long mark = arena.mark();
                        Tensor out = Views.empty(arena, "out", DType.F32, os, layout);
                        ops.reduce(op, tx, dim - shape.rank(), out); // negative dim indices work too
                        double[] expect = new double[Cases.numel(os)];
                        int len = shape.dim(dim);
                        int inner = 1;
                        for (int k = dim + 1; k < shape.rank(); k++) inner *= shape.dim(k);
                        for (int o = 0; o < expect.length; o++) {
                            int outer = o / inner, in = o % inner;
                            double[] v = new double[len];
                            for (int k = 0; k < len; k++) v[k] = x[(outer * len + k) * inner + in];
                            expect[o] = (float) reduceRef(op, v);
                        }
                        assertClose(expect, Views.read(out), 1e-5, 1e-5, "reduce " + op + " dim " + dim + " of " + dt + shape + " " + layout);
                        arena.release(mark);
                    }
                }
                for (ReduceOp op : ReduceOp.values()) {
                    long mark = arena.mark();
                    Tensor out = arena.allocate("all", dt, 1, 1);
                    ops.reduceAll(op, tx, out);
                    assertClose(new double[]{round(dt, reduceRef(op, x))}, Views.read(out), Cases.rtol(dt), 1e-5,
                            "reduceAll " + op + " of " + dt + shape + " " + layout);
                    arena.release(mark);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void nanPropagatesThroughMaxAndSums(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor x = arena.allocate("x", DType.F32, 5).copyFrom(new float[]{1, Float.NaN, 3, -2, 0});
            Tensor out = arena.allocate("out", DType.F32, 1);
            for (ReduceOp op : ReduceOp.values()) {
                ops.reduceAll(op, x, out);
                org.junit.jupiter.api.Assertions.assertTrue(Double.isNaN(out.item()), "reduceAll " + op + " with a NaN input");
            }
            // long enough for vector loops: NaN inside a full vector, and in the tail
            for (int at : new int[]{10, 35}) {
                float[] v = new float[37];
                for (int i = 0; i < v.length; i++) v[i] = (i % 5) - 2f;
                v[at] = Float.NaN;
                Tensor lx = arena.allocate("long", DType.F32, 37).copyFrom(v);
                for (ReduceOp op : ReduceOp.values()) {
                    ops.reduceAll(op, lx, out);
                    org.junit.jupiter.api.Assertions.assertTrue(Double.isNaN(out.item()), "reduceAll " + op + " with a NaN at " + at);
                    Tensor row = arena.allocate("row", DType.F32, 1, 1);
                    ops.reduce(op, lx.reshape(1, 37), 1, row);
                    org.junit.jupiter.api.Assertions.assertTrue(Double.isNaN(row.item()), "reduce " + op + " with a NaN at " + at);
                }
            }
            // rows split over worker threads (> 128K elements)
            double[] xs = new SeededRandom(22).normal(300 * 501);
            Tensor large = arena.allocate("large", DType.F32, 300, 501).copyFrom(round(DType.F32, xs));
            Tensor sums = arena.allocate("sums", DType.F32, 300, 1);
            for (ReduceOp op : new ReduceOp[]{ReduceOp.SUM, ReduceOp.LOGSUMEXP, ReduceOp.MAX}) {
                ops.reduce(op, large, -1, sums);
                double[] expect = new double[300];
                for (int i = 0; i < 300; i++) {
                    expect[i] = (float) reduceRef(op, java.util.Arrays.copyOfRange(round(DType.F32, xs), i * 501, (i + 1) * 501));
                }
                assertClose(expect, sums.toDoubleArray(), 1e-5, 1e-5, "large reduce " + op);
            }
            Tensor big = arena.allocate("big", DType.F32, 3).copyFrom(new float[]{1000, 1000, -1e30f});
            ops.reduceAll(ReduceOp.LOGSUMEXP, big, out);
            assertClose(new double[]{1000 + Math.log(2)}, new double[]{out.item()}, 1e-6, 0, "stable logsumexp");
        }
    }
}
