package dev.tally.engine.cpu;

import dev.tally.engine.Tensor;

/** Row and column gathers/scatters driven by integer ids (embedding lookup, vocabulary tiles). */
final class Indexing {
    private Indexing() {}

    private static IndexOutOfBoundsException outOfRange(String op, long id, long n, Tensor ids, Tensor table) {
        return new IndexOutOfBoundsException(op + ": id " + id + " (in " + ids.label() + ") is out of range for "
                + table.shape() + " (" + table.label() + ", " + n + " rows)");
    }

    /**
     * Each key's bits made an int whose signed order is {@link Double#compare}'s (NaN canonical, last), above its index:
     * sorting the longs sorts by (key, index) — the CUDA kernel's comparator, so both give the same order.
     */
    static void argsort(Tensor keys, Tensor order, Tensor rank) {
        int n = keys.dim(0);
        Buf bk = Buf.of(keys);
        long[] packed = new long[n];
        for (int i = 0; i < n; i++) {
            float f = (float) bk.get(keys.offset() + (long) i * keys.stride(0));
            int b = Float.isNaN(f) ? 0x7fc00000 : Float.floatToRawIntBits(f);
            packed[i] = ((long) (b ^ ((b >> 31) & 0x7fffffff)) << 32) | i;
        }
        java.util.Arrays.sort(packed);
        var so = order.segment();
        for (int i = 0; i < n; i++) so.setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, order.offset() + i, (int) packed[i]);
        if (rank == null) return;
        var sr = rank.segment();
        for (int i = 0; i < n; i++) sr.setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, rank.offset() + (int) packed[i], i);
    }

    static void embedding(Tensor table, Tensor ids, Tensor out) {
        Buf bt = Buf.of(table), bi = Buf.of(ids), o = Buf.of(out);
        Loop.Flat fi = new Loop.Flat(ids);
        long count = ids.numel();
        int v = table.dim(0), d = table.dim(1);
        long ts0 = table.stride(0), ts1 = table.stride(1);
        long[] os = out.strides();
        long so = os[os.length - 1];
        Loop.Flat rowStart = new Loop.Flat(out);
        for (long n = 0; n < count; n++) {
            long id = bi.getLong(fi.at(n));
            if (id >= v) throw outOfRange("embedding", id, v, ids, table);
            long ob = rowStart.at(n * d);
            for (int j = 0; j < d; j++) {
                o.set(ob + j * so, id < 0 ? 0.0 : bt.get(table.offset() + id * ts0 + j * ts1));
            }
        }
    }

    static void scatterAddRows(Tensor ids, Tensor src, Tensor table) {
        Buf bt = Buf.of(table), bi = Buf.of(ids), bs = Buf.of(src);
        Loop.Flat fi = new Loop.Flat(ids), fs = new Loop.Flat(src);
        long count = ids.numel();
        int v = table.dim(0), d = table.dim(1);
        long ts0 = table.stride(0), ts1 = table.stride(1);
        long ss = src.stride(-1);
        for (long n = 0; n < count; n++) {
            long id = bi.getLong(fi.at(n));
            if (id < 0) continue;
            if (id >= v) throw outOfRange("scatterAddRows", id, v, ids, table);
            long sb = fs.at(n * d);
            for (int j = 0; j < d; j++) {
                long p = table.offset() + id * ts0 + j * ts1;
                bt.set(p, bt.get(p) + bs.get(sb + j * ss));
            }
        }
    }

    static void gatherColumns(Tensor x, Tensor ids, Tensor out) {
        Buf bx = Buf.of(x), bi = Buf.of(ids), o = Buf.of(out);
        int n = x.dim(0), c = x.dim(1);
        for (int r = 0; r < n; r++) {
            long id = bi.getLong(ids.offset() + r * ids.stride(0));
            double v = id >= 0 && id < c ? bx.get(x.offset() + r * x.stride(0) + id * x.stride(1)) : 0.0;
            o.set(out.offset() + r * out.stride(0), v);
        }
    }

    static void scatterAddColumns(Tensor ids, Tensor src, Tensor x) {
        Buf bx = Buf.of(x), bi = Buf.of(ids), bs = Buf.of(src);
        int n = x.dim(0), c = x.dim(1);
        for (int r = 0; r < n; r++) {
            long id = bi.getLong(ids.offset() + r * ids.stride(0));
            if (id < 0 || id >= c) continue;
            long p = x.offset() + r * x.stride(0) + id * x.stride(1);
            bx.set(p, bx.get(p) + bs.get(src.offset() + r * src.stride(0)));
        }
    }
}
