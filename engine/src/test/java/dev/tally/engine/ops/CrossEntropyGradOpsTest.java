package dev.tally.engine.ops;

import dev.tally.engine.Backends;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static dev.tally.engine.testing.Reference.assertClose;
import static dev.tally.engine.testing.Reference.round;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * softmaxCrossEntropyGrad against a float64 reference: whole vocabularies and tiles of one (targets in another tile,
 * ignore_index), strided views, both id dtypes, bf16 logits, out aliasing the logits; the CPU's bits do not depend on
 * the layout and equal those of the four ops it replaces; bad calls fail the same way on every device, META included.
 */
class CrossEntropyGradOpsTest {

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        TestDevices.all().forEach(d -> {
            for (DType ids : new DType[] {DType.I32, DType.I64}) {
                for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                    for (Layout l : Layout.values()) out.add(Arguments.of(d, ids, dt, l));
                }
            }
        });
        return out.stream();
    }

    private static final int N = 9, C = 37; // 37: vector lanes and a scalar tail

    private static double[] longs(long[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    /** (exp(x − lse) − [t − offset == j]) · scale per element, in double. */
    private static double[] reference(double[] x, double[] lse, long[] targets, long offset, double[] scale, int c) {
        double[] out = new double[x.length];
        for (int r = 0; r < lse.length; r++) {
            for (int j = 0; j < c; j++) {
                double onehot = targets[r] - offset == j ? 1 : 0;
                out[r * c + j] = (Math.exp(x[r * c + j] - lse[r]) - onehot) * scale[r];
            }
        }
        return out;
    }

    /** Targets of a tile at offset 20 of a wider vocabulary: inside it, before it, after it, and ignore_index. */
    private static long[] tileTargets(SeededRandom r, long offset) {
        long[] t = new long[N];
        for (int i = 0; i < N; i++) t[i] = offset + r.ints(1, 0, C)[0];
        t[1] = -100;           // ignore_index
        t[2] = offset - 1;     // the previous tile's last column
        t[3] = offset + C;     // the next tile's first column
        t[4] = offset;         // this tile's first column
        t[5] = offset + C - 1; // and its last (in the scalar tail)
        return t;
    }

    @ParameterizedTest(name = "{0} ids {1} {2} {3}")
    @MethodSource("cases")
    void matchesFloat64Reference(Device device, DType idType, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(61);
        Ops ops = Backends.of(device).ops();
        for (long offset : new long[] {0, 20}) {
            for (boolean alias : new boolean[] {false, true}) {
                try (MemoryArena arena = TestArenas.open(device)) {
                    double[] x = round(dt, scaled(r.normal(N * C), 4));
                    double[] lse = new double[N], scale = new double[N];
                    for (int i = 0; i < N; i++) {
                        lse[i] = round(DType.F32, logSumExp(x, i) + 0.5 * i); // a tile's lse is at least its own
                        scale[i] = round(DType.F32, i % 3 == 0 ? 0 : 0.25 * (i + 1)); // masked rows scale by 0
                    }
                    long[] targets = offset == 0 ? r.ints(N, 0, C) : tileTargets(r, offset);
                    if (offset == 0) targets[1] = -100;
                    Tensor tx = Views.of(arena, "logits", dt, Shape.of(N, C), x, layout);
                    // lse as [N, 1], the row scale as [N]: both forms are accepted
                    Tensor tl = Views.of(arena, "lse", DType.F32, Shape.of(N, 1), lse, layout);
                    Tensor ts = Views.of(arena, "row_scale", DType.F32, Shape.of(N), scale, layout);
                    Tensor tt = Views.of(arena, "targets", idType, Shape.of(N), longs(targets), layout);
                    Tensor out = alias ? tx : Views.empty(arena, "dlogits", dt, Shape.of(N, C), layout);
                    ops.softmaxCrossEntropyGrad(tx, tl, tt, offset, ts, out);
                    double[] expect = round(dt, reference(x, lse, targets, offset, scale, C));
                    // f32: fl(x − lse) with |x − lse| < 32 moves e^(x − lse) by up to 2^-19 relative, exp adds an ulp;
                    // bf16: one bf16 ulp (2^-8) where the rounding boundary falls between the two results
                    double tol = dt == DType.BF16 ? 8e-3 : 4e-6;
                    assertClose(expect, Views.read(out), tol, 1e-7,
                            "softmaxCrossEntropyGrad " + idType + " " + dt + " " + layout + " offset " + offset + (alias ? " in place" : ""));
                }
            }
        }
    }

    private static double[] scaled(double[] v, double s) {
        for (int i = 0; i < v.length; i++) v[i] *= s;
        return v;
    }

    private static double logSumExp(double[] x, int row) {
        double m = Double.NEGATIVE_INFINITY, s = 0;
        for (int j = 0; j < C; j++) m = Math.max(m, x[row * C + j]);
        for (int j = 0; j < C; j++) s += Math.exp(x[row * C + j] - m);
        return m + Math.log(s);
    }

    /** F32 on the CPU: the same bits in every layout (vectors or element by element), and those of the four old ops. */
    @Test
    void cpuBitsDoNotDependOnLayoutAndMatchTheComposition() {
        SeededRandom r = new SeededRandom(62);
        Ops ops = Backends.of(Device.CPU).ops();
        int n = 6, c = 64; // whole vectors: the old ops' scalar tails used the library exp
        try (MemoryArena arena = TestArenas.open(Device.CPU)) {
            double[] x = round(DType.F32, scaled(r.normal(n * c), 5));
            double[] lse = new double[n], scale = new double[n];
            for (int i = 0; i < n; i++) {
                lse[i] = round(DType.F32, 3 + i);
                scale[i] = round(DType.F32, 1.0 / (i + 3));
            }
            long[] targets = r.ints(n, 0, c);
            targets[2] = -100;
            Tensor tl = Views.of(arena, "lse", DType.F32, Shape.of(n, 1), lse), ts = Views.of(arena, "scale", DType.F32, Shape.of(n, 1), scale);
            Tensor tt = Views.of(arena, "targets", DType.I64, Shape.of(n), longs(targets));
            double[] first = null;
            for (Layout layout : Layout.values()) {
                Tensor tx = Views.of(arena, "logits", DType.F32, Shape.of(n, c), x, layout);
                Tensor out = Views.empty(arena, "out", DType.F32, Shape.of(n, c), layout);
                ops.softmaxCrossEntropyGrad(tx, tl, tt, 0, ts, out);
                double[] got = Views.read(out);
                if (first == null) first = got; else assertArrayEquals(first, got, "bits in layout " + layout);
            }
            Tensor tx = Views.of(arena, "logits", DType.F32, Shape.of(n, c), x);
            Tensor old = arena.allocate("old", DType.F32, n, c), minusOne = arena.allocate("minus_one", DType.F32, n);
            ops.binary(BinaryOp.SUB, tx, tl, old);
            ops.unary(UnaryOp.EXP, old, old);
            ops.fill(minusOne, -1);
            ops.scatterAddColumns(tt, minusOne, old);
            ops.binary(BinaryOp.MUL, old, ts, old);
            assertArrayEquals(Views.read(old), first, "the bits of SUB, EXP, scatterAddColumns(−1), MUL");
        }
    }

    /** Large enough to be split over threads: rows are independent, so it equals the one-row-at-a-time results. */
    @Test
    void rowsSplitOverThreadsGiveEachRowsOwnResult() {
        SeededRandom r = new SeededRandom(63);
        Ops ops = Backends.of(Device.CPU).ops();
        int n = 40, c = 8192;
        try (MemoryArena arena = TestArenas.open(Device.CPU, 8L << 20)) {
            double[] x = round(DType.F32, r.normal(n * c));
            double[] lse = new double[n], scale = new double[n];
            for (int i = 0; i < n; i++) {
                lse[i] = round(DType.F32, 10 + 0.1 * i);
                scale[i] = 1;
            }
            long[] targets = r.ints(n, 0, c);
            Tensor tx = Views.of(arena, "logits", DType.F32, Shape.of(n, c), x), out = arena.allocate("out", DType.F32, n, c);
            Tensor tl = Views.of(arena, "lse", DType.F32, Shape.of(n), lse), ts = Views.of(arena, "scale", DType.F32, Shape.of(n), scale);
            Tensor tt = Views.of(arena, "targets", DType.I32, Shape.of(n), longs(targets));
            ops.softmaxCrossEntropyGrad(tx, tl, tt, 0, ts, out);
            double[] all = Views.read(out);
            Tensor one = arena.allocate("one", DType.F32, 1, c);
            for (int i = 0; i < n; i += 13) {
                ops.softmaxCrossEntropyGrad(tx.slice(0, i, i + 1), tl.slice(0, i, i + 1), tt.slice(0, i, i + 1), 0, ts.slice(0, i, i + 1), one);
                double[] row = Views.read(one), fromAll = java.util.Arrays.copyOfRange(all, i * c, (i + 1) * c);
                assertArrayEquals(fromAll, row, "row " + i);
            }
        }
    }

    static Stream<Device> devicesWithMeta() {
        return Stream.concat(TestDevices.all(), Stream.of(Device.META));
    }

    private static void fails(Executable call, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String p : parts) assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' should mention " + p);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devicesWithMeta")
    void badCallsNameWhatIsWrong(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor x = arena.allocate("logits", DType.F32, 4, 6), out = arena.allocate("dlogits", DType.F32, 4, 6);
            Tensor lse = arena.allocate("lse", DType.F32, 4, 1), scale = arena.allocate("scale", DType.F32, 4);
            Tensor t = arena.allocate("targets", DType.I64, 4);
            ops.softmaxCrossEntropyGrad(x, lse, t, 0, scale, out); // well-formed: no error (META computes nothing)
            fails(() -> ops.softmaxCrossEntropyGrad(x, lse, arena.allocate("ft", DType.F32, 4), 0, scale, out),
                    "softmaxCrossEntropyGrad", "I32 or I64", "ft");
            fails(() -> ops.softmaxCrossEntropyGrad(x, lse, arena.allocate("short", DType.I32, 3), 0, scale, out),
                    "softmaxCrossEntropyGrad", "short", "[3]", "[4]");
            fails(() -> ops.softmaxCrossEntropyGrad(x, arena.allocate("lse2", DType.F32, 4, 2), t, 0, scale, out),
                    "softmaxCrossEntropyGrad", "lse2", "one value per row", "[4, 1]");
            fails(() -> ops.softmaxCrossEntropyGrad(x, lse, t, 0, arena.allocate("scale5", DType.F32, 5), out),
                    "softmaxCrossEntropyGrad", "scale5", "one value per row");
            fails(() -> ops.softmaxCrossEntropyGrad(x, lse, t, 0, scale, arena.allocate("wide", DType.F32, 4, 7)),
                    "softmaxCrossEntropyGrad", "wide", "logits");
            fails(() -> ops.softmaxCrossEntropyGrad(arena.allocate("cube", DType.F32, 2, 2, 6), lse, t, 0, scale, out),
                    "softmaxCrossEntropyGrad", "cube", "[N, C]");
        }
    }
}
