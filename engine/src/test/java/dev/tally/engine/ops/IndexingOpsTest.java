package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static dev.tally.engine.testing.Reference.assertClose;
import static dev.tally.engine.testing.Reference.round;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** embedding / scatterAddRows / gatherColumns / scatterAddColumns with I32 and I64 ids. */
class IndexingOpsTest {

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        TestDevices.all().forEach(d -> {
            for (DType ids : new DType[]{DType.I32, DType.I64}) {
                for (DType dt : new DType[]{DType.F32, DType.BF16}) {
                    for (Layout l : Layout.values()) out.add(Arguments.of(d, ids, dt, l));
                }
            }
        });
        return out.stream();
    }

    private static double[] longs(long[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    /**
     * The row paths of other dtypes against the element loop (the permuted layout), the same bits: embedding's row copies
     * (bf16 and f16 rows as bytes, bf16 rows widened into F32 — CCE's gathered classifier tile in bf16 training; ignored
     * ids give +0 rows) and scatterAddRows with a bf16 table or source (widened, added with vectors, rounded; repeated
     * and ignored ids, sums that round, a NaN).
     */
    @org.junit.jupiter.api.Test
    void rowPathsOfOtherDtypesGiveTheElementLoopsBits() {
        SeededRandom r = new SeededRandom(44);
        Ops ops = Backends.of(Device.CPU).ops();
        int v = 9, d = 37, n = 12;
        Layout[] layouts = {Layout.SLICED, Layout.PERMUTED}; // unit column stride (row paths), and not (element loop)
        try (MemoryArena arena = TestArenas.open(Device.CPU)) {
            double[] table = r.normal(v * d), start = r.normal(v * d), src = r.normal(n * d, 1e-2);
            for (int i = 0; i < table.length; i++) table[i] = Math.rint(table[i] * 1000); // integral: exact in I32 too
            src[5] = Double.NaN;
            long[] ids = r.ints(n, -1, v);
            ids[3] = ids[4] = ids[7] = 2;
            ids[0] = -1;
            Tensor ti = Views.of(arena, "ids", DType.I64, Shape.of(n), longs(ids));
            for (DType[] pair : new DType[][] {{DType.BF16, DType.BF16}, {DType.BF16, DType.F32}, {DType.F16, DType.F16}, {DType.I32, DType.I32}}) {
                double[][] gathered = new double[2][];
                for (int k = 0; k < 2; k++) {
                    Tensor out = Views.empty(arena, "out", pair[1], Shape.of(n, d), layouts[k]);
                    ops.embedding(Views.of(arena, "table", pair[0], Shape.of(v, d), table, layouts[k]), ti, out);
                    gathered[k] = Views.read(out);
                }
                org.junit.jupiter.api.Assertions.assertArrayEquals(gathered[1], gathered[0], "embedding bits " + pair[0] + " -> " + pair[1]);
                for (int j = 0; j < d; j++) assertEquals(0L, Double.doubleToRawLongBits(gathered[0][j]), "ignored id: +0");
            }
            for (DType[] pair : new DType[][] {{DType.F32, DType.BF16}, {DType.BF16, DType.F32}, {DType.BF16, DType.BF16}}) {
                double[][] got = new double[2][];
                for (int k = 0; k < 2; k++) {
                    Tensor tt = Views.of(arena, "table", pair[1], Shape.of(v, d), start, layouts[k]);
                    ops.scatterAddRows(ti, Views.of(arena, "src", pair[0], Shape.of(n, d), src, layouts[k]), tt);
                    got[k] = Views.read(tt);
                }
                org.junit.jupiter.api.Assertions.assertArrayEquals(got[1], got[0], "scatterAddRows " + pair[0] + " into " + pair[1]);
            }
        }
    }

    @ParameterizedTest(name = "{0} ids {1} {2} {3}")
    @MethodSource("cases")
    void embeddingAndItsBackward(Device device, DType idType, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(41);
        Ops ops = Backends.of(device).ops();
        int v = 11, d = 5;
        Shape idShape = Shape.of(3, 4);
        try (MemoryArena arena = TestArenas.open(device)) {
            double[] table = round(dt, r.normal(v * d));
            long[] ids = r.ints(12, -1, v); // -1 (negative) rows give 0 and are skipped when scattering
            ids[0] = 3;
            ids[1] = 3; // a repeated id accumulates
            ids[2] = -100; // ignore_index, far below the table
            Tensor tt = Views.of(arena, "table", dt, Shape.of(v, d), table, layout);
            Tensor ti = Views.of(arena, "ids", idType, idShape, longs(ids), layout);
            Tensor out = Views.empty(arena, "out", dt, Shape.of(3, 4, d), layout);
            ops.embedding(tt, ti, out);
            double[] expect = new double[12 * d];
            for (int n = 0; n < 12; n++) for (int j = 0; j < d; j++) expect[n * d + j] = ids[n] < 0 ? 0 : table[(int) ids[n] * d + j];
            assertClose(expect, Views.read(out), 0, 0, "embedding " + idType + " " + dt + " " + layout);

            double[] src = round(dt, r.normal(12 * d));
            Tensor ts = Views.of(arena, "src", dt, Shape.of(3, 4, d), src, layout);
            Tensor grad = Views.of(arena, "grad", DType.F32, Shape.of(v, d), new double[v * d], layout);
            ops.scatterAddRows(ti, ts, grad);
            ops.scatterAddRows(ti, ts, grad); // accumulates across calls too
            double[] eg = new double[v * d];
            for (int n = 0; n < 12; n++) {
                if (ids[n] < 0) continue;
                for (int j = 0; j < d; j++) eg[(int) ids[n] * d + j] += 2 * src[n * d + j];
            }
            assertClose(eg, Views.read(grad), 1e-6, 1e-6, "scatterAddRows " + idType + " " + dt + " " + layout);

            Tensor bad = Views.of(arena, "bad", idType, Shape.of(2), new double[]{1, v}, Layout.CONTIGUOUS);
            Tensor out2 = arena.allocate("out2", dt, 2, d);
            // thrown by the call on the CPU, at the next synchronisation on CUDA (asynchronous), naming the call either way
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> {
                ops.embedding(tt, bad, out2);
                ops.synchronize();
            });
            assertTrue(e.getMessage().startsWith("embedding: id " + v + " (in bad) is out of range for [" + v + ", " + d + "] (table"),
                    e.getMessage());
        }
    }

    /**
     * F32 rows (block copies and vector adds) against the element loop (the permuted layout): the same bits, with a
     * row width that leaves a vector tail; a bad id is reported before anything is written.
     */
    @org.junit.jupiter.api.Test
    void rowFastPathsGiveTheElementLoopsBitsAndWriteNothingOnABadId() {
        SeededRandom r = new SeededRandom(43);
        Ops ops = Backends.of(Device.CPU).ops();
        int v = 9, d = 37, n = 12;
        try (MemoryArena arena = TestArenas.open(Device.CPU)) {
            double[] table = r.normal(v * d), src = r.normal(n * d), start = r.normal(v * d);
            long[] ids = r.ints(n, -1, v);
            ids[3] = ids[4] = 2; // repeated: two adds into one row, in id order
            Tensor ti = Views.of(arena, "ids", DType.I64, Shape.of(n), longs(ids));
            double[][] gathered = new double[2][], scattered = new double[2][];
            Layout[] layouts = {Layout.SLICED, Layout.PERMUTED}; // unit column stride (fast), and not (element loop)
            for (int k = 0; k < 2; k++) {
                Tensor tt = Views.of(arena, "table", DType.F32, Shape.of(v, d), table, layouts[k]);
                Tensor out = Views.empty(arena, "out", DType.F32, Shape.of(n, d), layouts[k]);
                ops.embedding(tt, ti, out);
                gathered[k] = Views.read(out);
                Tensor ts = Views.of(arena, "src", DType.F32, Shape.of(n, d), src, layouts[k]);
                Tensor grad = Views.of(arena, "grad", DType.F32, Shape.of(v, d), start, layouts[k]);
                ops.scatterAddRows(ti, ts, grad);
                scattered[k] = Views.read(grad);
                Tensor bad = Views.of(arena, "bad", DType.I64, Shape.of(2), new double[] {1, v});
                assertThrows(IndexOutOfBoundsException.class, () -> ops.scatterAddRows(bad, ts.slice(0, 0, 2), grad));
                org.junit.jupiter.api.Assertions.assertArrayEquals(scattered[k], Views.read(grad), "a bad id writes nothing");
            }
            org.junit.jupiter.api.Assertions.assertArrayEquals(gathered[1], gathered[0], "embedding bits");
            org.junit.jupiter.api.Assertions.assertArrayEquals(scattered[1], scattered[0], "scatterAddRows bits");
        }
    }

    @ParameterizedTest(name = "{0} ids {1} {2} {3}")
    @MethodSource("cases")
    void columnGatherAndScatter(Device device, DType idType, DType dt, Layout layout) {
        TestDevices.assumeUsable(device);
        SeededRandom r = new SeededRandom(42);
        Ops ops = Backends.of(device).ops();
        int n = 7, c = 13;
        try (MemoryArena arena = TestArenas.open(device)) {
            double[] x = round(dt, r.normal(n * c));
            long[] ids = r.ints(n, 0, c);
            ids[1] = -100; // ignore_index
            ids[2] = c;    // belongs to another vocabulary tile
            Tensor tx = Views.of(arena, "x", dt, Shape.of(n, c), x, layout);
            Tensor ti = Views.of(arena, "ids", idType, Shape.of(n), longs(ids), layout);
            Tensor out = Views.empty(arena, "out", DType.F32, Shape.of(n), layout);
            ops.gatherColumns(tx, ti, out);
            double[] expect = new double[n];
            for (int i = 0; i < n; i++) expect[i] = ids[i] >= 0 && ids[i] < c ? x[i * c + (int) ids[i]] : 0;
            assertClose(expect, Views.read(out), 0, 0, "gatherColumns " + idType + " " + dt + " " + layout);

            double[] src = round(dt, r.normal(n));
            Tensor ts = Views.of(arena, "src", dt, Shape.of(n), src, layout);
            ops.scatterAddColumns(ti, ts, tx);
            double[] ex = x.clone();
            for (int i = 0; i < n; i++) if (ids[i] >= 0 && ids[i] < c) ex[i * c + (int) ids[i]] = round(dt, ex[i * c + (int) ids[i]] + src[i]);
            assertClose(ex, Views.read(tx), 0, 0, "scatterAddColumns " + idType + " " + dt + " " + layout);
        }
    }
}
