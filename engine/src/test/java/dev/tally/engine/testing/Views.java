package dev.tally.engine.testing;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

/**
 * Builds tensors with a given logical content in different memory layouts, so every op is exercised on strided views.
 * Contents are written through a contiguous base buffer with host copies only, so building a view does not depend on
 * the op under test.
 */
public final class Views {
    private Views() {}

    /** How a test tensor is laid out in memory. */
    public enum Layout {
        /** Plain row-major. */
        CONTIGUOUS,
        /** Dims stored in reverse order and permuted back (every stride non-standard when rank ≥ 2). */
        PERMUTED,
        /** A slice out of a larger buffer: the last dim is padded (gaps between rows) and the start is offset. */
        SLICED
    }

    /** A tensor of {@code shape} holding row-major {@code values} in the given layout. */
    public static Tensor of(MemoryArena arena, String label, DType dt, Shape shape, double[] values, Layout layout) {
        Tensor view = empty(arena, label, dt, shape, layout);
        write(view, values);
        return view;
    }

    public static Tensor of(MemoryArena arena, String label, DType dt, Shape shape, double[] values) {
        return of(arena, label, dt, shape, values, Layout.CONTIGUOUS);
    }

    /** A tensor of {@code shape} in the given layout (contents: whatever the memory held, filled with NaN for floats). */
    public static Tensor empty(MemoryArena arena, String label, DType dt, Shape shape, Layout layout) {
        int r = shape.rank();
        int[] d = shape.toArray();
        Tensor view = switch (layout) {
            case CONTIGUOUS -> arena.allocate(label, dt, shape);
            case PERMUTED -> {
                int[] rev = new int[r];
                int[] order = new int[r];
                for (int i = 0; i < r; i++) {
                    rev[i] = d[r - 1 - i];
                    order[i] = r - 1 - i;
                }
                yield arena.allocate(label, dt, Shape.of(rev)).permute(order);
            }
            case SLICED -> {
                if (r == 0) yield arena.allocate(label, dt, shape);
                if (r == 1) yield arena.allocate(label, dt, Shape.of(d[0] + 4)).slice(0, 3, 3 + d[0]);
                int[] big = d.clone();
                big[r - 1] += 3;
                big[0] += 1;
                Tensor base = arena.allocate(label, dt, Shape.of(big));
                Tensor v = base.slice(r - 1, 2, 2 + d[r - 1]);
                yield v.slice(0, 1, 1 + d[0]);
            }
        };
        if (dt.isFloating()) {
            double[] nan = new double[(int) baseElements(view)];
            java.util.Arrays.fill(nan, Double.NaN);
            writeBase(view, nan);
        }
        return view;
    }

    private static long baseElements(Tensor view) {
        return view.storage().byteSize() / view.dtype().byteSize();
    }

    /** Writes row-major logical values into the view through host copies of its whole storage. */
    public static void write(Tensor view, double[] values) {
        if (values.length != view.numel()) {
            throw new IllegalArgumentException(values.length + " values for " + view.shape());
        }
        double[] base = readBase(view);
        long[] pos = positions(view);
        for (int i = 0; i < values.length; i++) base[(int) pos[i]] = values[i];
        writeBase(view, base);
    }

    /** Row-major logical values of the view, read through host copies of its whole storage. */
    public static double[] read(Tensor view) {
        double[] base = readBase(view);
        long[] pos = positions(view);
        double[] out = new double[pos.length];
        for (int i = 0; i < pos.length; i++) out[i] = base[(int) pos[i]];
        return out;
    }

    /** Storage positions (elements) of the view's elements in row-major order. */
    static long[] positions(Tensor view) {
        int n = (int) view.numel();
        long[] pos = new long[n];
        int[] d = view.dims();
        long[] s = view.strides();
        for (int i = 0; i < n; i++) {
            long rem = i, off = view.offset();
            for (int k = d.length - 1; k >= 0; k--) {
                off += (rem % d[k]) * s[k];
                rem /= d[k];
            }
            pos[i] = off;
        }
        return pos;
    }

    private static Tensor whole(Tensor view) {
        int n = (int) baseElements(view);
        return new Tensor(view.storage(), view.dtype(), Shape.of(n), new long[]{1}, 0);
    }

    private static double[] readBase(Tensor view) {
        return whole(view).toDoubleArray();
    }

    private static void writeBase(Tensor view, double[] base) {
        whole(view).copyFrom(base);
    }
}
