package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.testing.Fixtures;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.tally.engine.testing.Reference.assertClose;
import static dev.tally.engine.testing.Reference.round;

/** fill, copy, unary, unaryBackward, binary, binaryScalar, axpby against double references, on strided views. */
class ElementwiseOpsTest {

    /** Inputs inside each op's domain (positive where log/sqrt need it), rounded to the input dtype. */
    private static double[] inputs(UnaryOp op, SeededRandom r, int n, DType dt) {
        double[] x = switch (op) {
            case LOG, SQRT, RSQRT, RECIPROCAL -> r.uniform(n, 0.1, 4.0);
            case EXP -> r.uniform(n, -4, 4);
            default -> r.normal(n, 2.0);
        };
        return round(dt, x);
    }

    static double unaryRef(UnaryOp op, double x) {
        return switch (op) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1 / Math.sqrt(x);
            case SQUARE -> x * x;
            case RECIPROCAL -> 1 / x;
            case SIN -> Math.sin(x);
            case COS -> Math.cos(x);
            case TANH -> Math.tanh(x);
            case SIGMOID -> 1 / (1 + Math.exp(-x));
            case SILU -> x / (1 + Math.exp(-x));
            case RELU -> Math.max(0, x);
            case SIGN -> Math.signum(x);
            case ISFINITE -> Double.isFinite(x) ? 1 : 0;
        };
    }

    /** f'(x) by the textbook formula, independent of the backend's. */
    static double derivRef(UnaryOp op, double x) {
        double s = 1 / (1 + Math.exp(-x));
        return switch (op) {
            case NEG -> -1;
            case ABS -> Math.signum(x);
            case EXP -> Math.exp(x);
            case LOG -> 1 / x;
            case SQRT -> 0.5 / Math.sqrt(x);
            case RSQRT -> -0.5 * Math.pow(x, -1.5);
            case SQUARE -> 2 * x;
            case RECIPROCAL -> -1 / (x * x);
            case SIN -> Math.cos(x);
            case COS -> -Math.sin(x);
            case TANH -> 1 - Math.tanh(x) * Math.tanh(x);
            case SIGMOID -> s * (1 - s);
            case SILU -> s + x * s * (1 - s);
            case RELU -> x > 0 ? 1 : 0;
            case SIGN, ISFINITE -> 0;
        };
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void unaryMatchesReference(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(11);
        try (MemoryArena arena = TestArenas.open(device)) {
            Ops ops = arena.device().equals(device) ? dev.tally.engine.Backends.of(device).ops() : null;
            for (Shape shape : Cases.SHAPES) {
                int n = Cases.numel(shape);
                for (UnaryOp op : UnaryOp.values()) {
                    long mark = arena.mark();
                    double[] x = inputs(op, r, n, dt);
                    Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                    Tensor out = Views.empty(arena, "out", dt, shape, layout);
                    ops.unary(op, tx, out);
                    double[] expect = new double[n];
                    for (int i = 0; i < n; i++) expect[i] = round(dt, unaryRef(op, x[i]));
                    assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-6, "unary " + op + " " + dt + shape + " " + layout);
                    // in place (out == x exactly) is allowed for elementwise ops
                    ops.unary(op, tx, tx);
                    assertClose(expect, Views.read(tx), Cases.rtol(dt), 1e-6, "in-place unary " + op + " " + dt + shape);
                    arena.release(mark);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void unaryBackwardMatchesReference(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(12);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : Cases.SHAPES) {
                int n = Cases.numel(shape);
                for (UnaryOp op : UnaryOp.values()) {
                    long mark = arena.mark();
                    double[] x = inputs(op, r, n, dt);
                    double[] dy = round(dt, r.normal(n));
                    Tensor tx = Views.of(arena, "x", dt, shape, x, layout);
                    Tensor tdy = Views.of(arena, "dy", dt, shape, dy, Layout.CONTIGUOUS);
                    Tensor dx = Views.empty(arena, "dx", dt, shape, layout);
                    ops.unaryBackward(op, tx, tdy, dx);
                    double[] expect = new double[n];
                    for (int i = 0; i < n; i++) expect[i] = round(dt, dy[i] * derivRef(op, x[i]));
                    assertClose(expect, Views.read(dx), Cases.rtol(dt), 1e-5, "unaryBackward " + op + " " + dt + shape + " " + layout);
                    arena.release(mark);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void unaryFromATransposedViewIntoAContiguousOutputAndFiniteDifferenceDerivatives(Device device) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(16);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (UnaryOp op : UnaryOp.values()) {
                long mark = arena.mark();
                boolean positive = op == UnaryOp.LOG || op == UnaryOp.SQRT || op == UnaryOp.RSQRT || op == UnaryOp.RECIPROCAL;
                Tensor x = arena.allocate("x", DType.F32, 11, 7).copyFrom(r.uniform(77, positive ? 0.2 : -3, 3));
                Tensor xt = x.t(); // a strided input read into a contiguous output: the two layouts differ
                Tensor out = arena.allocate("out", DType.F32, 7, 11);
                ops.unary(op, xt, out);
                double[] xv = xt.toDoubleArray();
                double[] expect = new double[xv.length];
                for (int i = 0; i < expect.length; i++) expect[i] = round(DType.F32, unaryRef(op, xv[i]));
                Fixtures.assertClose(out.toDoubleArray(), expect, 2e-6, "unary " + op + " of a transposed view");
                if (op == UnaryOp.SIGN || op == UnaryOp.ISFINITE) continue;
                // the derivative by central differences of the double reference, independent of derivRef's formulas
                Tensor dy = arena.allocate("dy", DType.F32, 7, 11).copyFrom(r.uniform(77, -1, 1));
                Tensor dx = arena.allocate("dx", DType.F32, 7, 11);
                ops.unaryBackward(op, xt, dy, dx);
                double[] dyv = dy.toDoubleArray(), grad = new double[xv.length];
                for (int i = 0; i < grad.length; i++) {
                    double h = 1e-6 * Math.max(1, Math.abs(xv[i]));
                    grad[i] = dyv[i] * (unaryRef(op, xv[i] + h) - unaryRef(op, xv[i] - h)) / (2 * h);
                }
                Fixtures.assertClose(dx.toDoubleArray(), grad, 1e-5, "unaryBackward " + op + " of a transposed view");
                arena.release(mark);
            }
        }
    }

    static double binaryRef(BinaryOp op, double a, double b) {
        return switch (op) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case MAX -> Math.max(a, b);
            case MIN -> Math.min(a, b);
            case POW -> Math.pow(a, b);
            case LOGADDEXP -> Math.log(Math.exp(a) + Math.exp(b));
            case EQ -> a == b ? 1 : 0;
            case NE -> a != b ? 1 : 0;
            case LT -> a < b ? 1 : 0;
            case LE -> a <= b ? 1 : 0;
            case GT -> a > b ? 1 : 0;
            case GE -> a >= b ? 1 : 0;
        };
    }

    /** (a shape, b shape) pairs: equal, trailing broadcast, both-sided broadcast, scalar-like, rank-0-ish. */
    private static final Shape[][] BROADCASTS = {
            {Shape.of(7), Shape.of(7)},
            {Shape.of(3, 5), Shape.of(5)},
            {Shape.of(4, 1, 3), Shape.of(2, 1)},
            {Shape.of(1), Shape.of(2, 3)},
            {Shape.of(2, 3, 1), Shape.of(1, 3, 5)},
            {Shape.of(3, 19), Shape.of(3, 1)},      // one value per row (per-row scale), rows long enough for vectors
            {Shape.of(2, 3, 17), Shape.of(17)},
    };

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void binaryBroadcastsLikeNumpy(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(13);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape[] pair : BROADCASTS) {
                Shape sa = pair[0], sb = pair[1];
                Shape so = dev.tally.engine.internal.Checks.broadcast("test", sa, sb);
                for (BinaryOp op : BinaryOp.values()) {
                    long mark = arena.mark();
                    double[] a = round(dt, op == BinaryOp.POW ? r.uniform(Cases.numel(sa), 0.2, 3) : r.normal(Cases.numel(sa)));
                    double[] b = round(dt, op == BinaryOp.DIV ? r.uniform(Cases.numel(sb), 0.5, 2) : r.normal(Cases.numel(sb)));
                    if (op == BinaryOp.EQ || op == BinaryOp.NE || op == BinaryOp.LE || op == BinaryOp.GE) {
                        // make some elements equal so the comparisons see ties
                        for (int i = 0; i < Math.min(a.length, b.length); i += 2) a[i] = b[i];
                    }
                    Tensor ta = Views.of(arena, "a", dt, sa, a, layout);
                    Tensor tb = Views.of(arena, "b", dt, sb, b, Layout.CONTIGUOUS);
                    Tensor out = Views.empty(arena, "out", dt, so, layout);
                    ops.binary(op, ta, tb, out);
                    double[] ea = Reference.broadcast(a, sa.dims(), so.dims());
                    double[] eb = Reference.broadcast(b, sb.dims(), so.dims());
                    double[] expect = new double[ea.length];
                    for (int i = 0; i < ea.length; i++) expect[i] = round(dt, binaryRef(op, ea[i], eb[i]));
                    assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-6,
                            "binary " + op + " " + dt + " " + sa + " with " + sb + " " + layout);
                    arena.release(mark);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void binaryScalarAndAxpby(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(14);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            for (Shape shape : Cases.SHAPES) {
                int n = Cases.numel(shape);
                double[] a = round(dt, r.uniform(n, 0.1, 3));
                Tensor ta = Views.of(arena, "a", dt, shape, a, layout);
                Tensor out = Views.empty(arena, "out", dt, shape, layout);
                for (BinaryOp op : BinaryOp.values()) {
                    double s = op == BinaryOp.EQ ? a[0] : 1.75;
                    ops.binaryScalar(op, ta, s, out);
                    double[] expect = new double[n];
                    for (int i = 0; i < n; i++) expect[i] = round(dt, binaryRef(op, a[i], s));
                    assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-6, "binaryScalar " + op + " " + dt + shape + " " + layout);
                }
                // axpby with y broadcast along the leading dims
                Shape ys = Shape.of(shape.dim(-1));
                double[] y = round(dt, r.normal(ys.dims()[0]));
                Tensor ty = Views.of(arena, "y", dt, ys, y, Layout.CONTIGUOUS);
                ops.axpby(0.5, ta, -2.0, ty, out);
                double[] yb = Reference.broadcast(y, ys.dims(), shape.dims());
                double[] expect = new double[n];
                for (int i = 0; i < n; i++) expect[i] = round(dt, 0.5 * a[i] - 2.0 * yb[i]);
                assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-6, "axpby " + dt + shape + " " + layout);
                // in place: out == x (the optimizer-update pattern m = β·m + (1−β)·g)
                ops.axpby(0.9, ta, 0.1, ty, ta);
                for (int i = 0; i < n; i++) expect[i] = round(dt, 0.9 * a[i] + 0.1 * yb[i]);
                assertClose(expect, Views.read(ta), Cases.rtol(dt), 1e-6, "in-place axpby " + dt + shape + " " + layout);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceDtypeLayout")
    void axpbyBroadcastsBothOperands(Device device, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(17);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Shape sx = Shape.of(3, 1, 5), sy = Shape.of(4, 1), so = Shape.of(3, 4, 5);
            double[] x = round(dt, r.uniform(15, -1, 1)), y = round(dt, r.uniform(4, -1, 1));
            Tensor tx = Views.of(arena, "x", dt, sx, x, layout);
            Tensor ty = Views.of(arena, "y", dt, sy, y, layout);
            Tensor out = Views.empty(arena, "out", dt, so, layout);
            ops.axpby(2, tx, -3, ty, out);
            double[] xb = Reference.broadcast(x, sx.dims(), so.dims()), yb = Reference.broadcast(y, sy.dims(), so.dims());
            double[] expect = new double[60];
            for (int i = 0; i < 60; i++) expect[i] = round(dt, 2 * xb[i] - 3 * yb[i]);
            assertClose(expect, Views.read(out), Cases.rtol(dt), 1e-6, "axpby of " + sx + " and " + sy + " " + dt + " " + layout);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void isFiniteMasksAndWhereKeepsNonFiniteValuesOut(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor g = arena.allocate("g", DType.F32, 2, 3)
                    .copyFrom(new double[]{1, Double.NaN, 3, Double.POSITIVE_INFINITY, 5, Double.NEGATIVE_INFINITY});
            Tensor mask = arena.allocate("mask", DType.F32, 2, 3), out = arena.allocate("out", DType.F32, 2, 3);
            Tensor zero = arena.allocate("zero", DType.F32, 1);
            ops.fill(zero, 0);
            ops.unary(UnaryOp.ISFINITE, g, mask);
            assertClose(new double[]{1, 0, 1, 0, 1, 0}, mask.toDoubleArray(), 0, 0, "isfinite of NaN and ±inf");
            ops.where(mask, g, zero, out); // zero broadcasts from [1]
            assertClose(new double[]{1, 0, 3, 0, 5, 0}, out.toDoubleArray(), 0, 0, "where");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("dev.tally.engine.ops.Cases#deviceLayout")
    void fillAndCastingCopy(Device device, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(15);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Shape shape = Shape.of(3, 7);
            for (DType dt : DType.values()) {
                Tensor t = Views.empty(arena, "t", dt, shape, layout);
                ops.fill(t, 3.0);
                double[] expect = new double[21];
                java.util.Arrays.fill(expect, 3.0);
                assertClose(expect, Views.read(t), 0, 0, "fill " + dt + " " + layout);
            }
            DType[] all = {DType.F32, DType.BF16, DType.F16, DType.I32, DType.I64};
            double[] src = r.normal(21, 50);
            for (DType from : all) {
                for (DType to : all) {
                    double[] v = from.isFloating() ? round(from, src) : java.util.Arrays.stream(src).map(Math::rint).toArray();
                    Tensor a = Views.of(arena, "src", from, shape, v, layout);
                    Tensor b = Views.empty(arena, "dst", to, shape, layout == Layout.PERMUTED ? Layout.SLICED : Layout.PERMUTED);
                    ops.copy(a, b);
                    double[] expect = new double[21];
                    for (int i = 0; i < 21; i++) expect[i] = to.isFloating() ? round(to, v[i]) : (long) v[i];
                    assertClose(expect, Views.read(b), 0, 0, "copy " + from + " -> " + to + " " + layout);
                }
            }
            // broadcast copy from an expanded (stride 0) view and from a [7] row
            double[] row = round(DType.F32, r.normal(7));
            Tensor tr = Views.of(arena, "row", DType.F32, Shape.of(7), row, Layout.CONTIGUOUS);
            Tensor dst = Views.empty(arena, "dst", DType.BF16, shape, layout);
            ops.copy(tr.expand(shape), dst);
            double[] expect = round(DType.BF16, Reference.broadcast(row, new int[]{7}, shape.dims()));
            assertClose(expect, Views.read(dst), 0, 0, "copy of expanded view " + layout);
            ops.fill(dst, -1);
            ops.copy(tr, dst);
            assertClose(expect, Views.read(dst), 0, 0, "broadcast copy " + layout);
            ops.fill(dst, -1);
            ops.copy(tr.reshape(1, 7), dst); // a size-1 leading dim of the same rank broadcasts too
            assertClose(expect, Views.read(dst), 0, 0, "broadcast copy of a [1, 7] row " + layout);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void largeIdsSurviveIntegerCopies(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = dev.tally.engine.Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            long[] ids = {(1L << 53) + 1, -5, Long.MAX_VALUE, 0};
            Tensor a = arena.allocate("a", DType.I64, 4).copyFrom(ids);
            Tensor b = arena.allocate("b", DType.I64, 4);
            ops.copy(a, b);
            org.junit.jupiter.api.Assertions.assertArrayEquals(ids, b.toLongArray());
        }
    }

}
