package dev.tally.engine.ops;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Comparator;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** argsort against Java's stable sort by Double.compare: ties, ±0, NaN, infinities, strided and bf16 keys, the rank. */
class ArgsortOpsTest {

    private static double[] keys(SeededRandom r, int n, boolean ties) {
        double[] k = ties ? IntStream.range(0, n).mapToDouble(i -> (i * 37) % 7 - 3).toArray() : r.normal(n, 10);
        for (int i = 0; i < n; i++) {
            if (i % 11 == 4) k[i] = Double.NaN;
            if (i % 13 == 5) k[i] = -0.0;
            if (i % 13 == 6) k[i] = 0.0;
            if (i % 31 == 7) k[i] = i % 2 == 0 ? Double.POSITIVE_INFINITY : Double.NEGATIVE_INFINITY;
        }
        return k;
    }

    /** The order of the keys as the device stores them (rounded to its dtype). */
    private static long[] expected(Tensor keys) {
        double[] stored = new double[keys.dim(0)];
        float[] f = keys.toFloatArray();
        for (int i = 0; i < f.length; i++) stored[i] = f[i];
        return IntStream.range(0, stored.length).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> stored[i]).thenComparingInt(i -> i))
                .mapToLong(Integer::longValue).toArray();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.tally.engine.ops.Cases#devices")
    void sortsLikeDoubleCompareStablyAndGivesTheInversePermutation(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        SeededRandom r = new SeededRandom(3);
        for (int n : new int[] {1, 2, 3, 7, 64, 100, 1000, 32000}) {
            for (boolean ties : new boolean[] {false, true}) {
                for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                    try (MemoryArena arena = TestArenas.open(device, 16L * n + (1 << 16))) {
                        Tensor wide = arena.allocate("keys", dt, n, 2);
                        Tensor keys = wide.select(1, 1); // a strided view: every other element
                        double[] k = keys(r, n, ties);
                        keys.copyFrom(k);
                        Tensor order = arena.allocate("order", DType.I32, n), rank = arena.allocate("rank", DType.I32, n);
                        ops.argsort(keys, order, rank);
                        long[] want = expected(keys), got = order.toLongArray(), ranks = rank.toLongArray();
                        String what = device + " n=" + n + " ties=" + ties + " " + dt;
                        assertArrayEquals(want, got, what);
                        for (int i = 0; i < n; i++) assertTrue(ranks[(int) got[i]] == i, what + ": rank of " + got[i]);
                    }
                }
            }
        }
    }

    @Test
    void badOutputsAreNamed() {
        for (Device device : new Device[] {Device.CPU, Device.META}) {
            Ops ops = Backends.of(device).ops();
            try (MemoryArena arena = TestArenas.open(device, 1 << 16)) {
                Tensor keys = arena.allocate("keys", DType.F32, 10);
                var wrongType = assertThrows(IllegalArgumentException.class, () -> ops.argsort(keys, arena.allocate("order", DType.I64, 10), null));
                assertTrue(wrongType.getMessage().contains("argsort") && wrongType.getMessage().contains("order"), wrongType.getMessage());
                var wrongShape = assertThrows(IllegalArgumentException.class,
                        () -> ops.argsort(keys, arena.allocate("order", DType.I32, 10), arena.allocate("rank", DType.I32, 9)));
                assertTrue(wrongShape.getMessage().contains("rank"), wrongShape.getMessage());
                assertThrows(IllegalArgumentException.class, () -> ops.argsort(arena.allocate("m", DType.F32, 2, 5), arena.allocate("o", DType.I32, 10), null));
            }
        }
    }
}
