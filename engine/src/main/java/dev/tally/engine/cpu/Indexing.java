package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

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
        if (unitRows(table) && unitRows(out) && (table.dtype() == out.dtype() || (table.dtype() == DType.BF16 && out.dtype() == DType.F32))) {
            copyRows(table, ids, out);
            return;
        }
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
        if (floatRows(table) && floatRows(src)) {
            addRows(ids, src, table);
            return;
        }
        long[] all = checkedIds("scatterAddRows", ids, table); // a bad id leaves the table as it was
        Buf bt = Buf.of(table), bs = Buf.of(src);
        Loop.Flat fs = new Loop.Flat(src);
        int d = table.dim(1);
        long ts0 = table.stride(0), ts1 = table.stride(1);
        long ss = src.stride(-1);
        for (int n = 0; n < all.length; n++) {
            long id = all[n];
            if (id < 0) continue;
            long sb = fs.at((long) n * d);
            for (int j = 0; j < d; j++) {
                long p = table.offset() + id * ts0 + j * ts1;
                bt.set(p, bt.get(p) + bs.get(sb + j * ss));
            }
        }
    }

    // ---- rows with unit column stride (CCE gathers a vocabulary tile of classifier rows per tile, any dtype, and scatters it) ----

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    /** F32 or bf16 and every row (the last dim) contiguous: rows can be added with vectors. */
    private static boolean floatRows(Tensor t) {
        return (t.dtype() == DType.F32 || t.dtype() == DType.BF16) && unitRows(t);
    }

    /** Every row (the last dim) contiguous, any dtype. */
    private static boolean unitRows(Tensor t) {
        return t.rank() >= 1 && (t.stride(-1) == 1 || t.dim(-1) == 1);
    }

    /** Every id, checked before anything is written (a bad id leaves the output as it was). */
    private static long[] checkedIds(String op, Tensor ids, Tensor table) {
        Buf bi = Buf.of(ids);
        Loop.Flat fi = new Loop.Flat(ids);
        long[] out = new long[Math.toIntExact(ids.numel())];
        int v = table.dim(0);
        for (int n = 0; n < out.length; n++) {
            out[n] = bi.getLong(fi.at(n));
            if (out[n] >= v) throw outOfRange(op, out[n], v, ids, table);
        }
        return out;
    }

    /**
     * Contiguous rows, table and output of one dtype (each row moved as bytes: what the element loop writes, a float
     * widened and rounded back to its own dtype, except that a signalling NaN's payload is kept) or a bf16 table into
     * an F32 output (CCE's gathered classifier rows in bf16 training: each row widened, exact); an ignored id's row
     * zeroed (+0 and integer 0 are all-zero bytes in every dtype).
     */
    private static void copyRows(Tensor table, Tensor ids, Tensor out) {
        long[] id = checkedIds("embedding", ids, table);
        int d = table.dim(1), es = table.dtype().byteSize(), os = out.dtype().byteSize();
        boolean widen = table.dtype() != out.dtype();
        MemorySegment st = table.segment(), so = out.segment();
        Loop.Flat rowStart = new Loop.Flat(out);
        for (int n = 0; n < id.length; n++) {
            long ob = rowStart.at((long) n * d);
            long tb = table.offset() + id[n] * table.stride(0);
            if (id[n] < 0) so.asSlice(ob * os, (long) os * d).fill((byte) 0);
            else if (widen) Bf16Lanes.widenRow(st, tb, so, ob, d);
            else MemorySegment.copy(st, tb * es, so, ob * os, (long) es * d);
        }
    }

    /**
     * scatterAddRows with vectors along each row, F32 or bf16 table and source (a bf16 row is widened into fp32 scratch
     * first and the table's rounded back after: CCE's classifier gradient in bf16 training, a vocabulary tile of F32 rows
     * at a time). Rows are added in id order, each element once per id, as the generic loop does; it adds in double and
     * rounds to fp32 (then bf16), and a sum of two floats rounds the same in double then fp32 as in fp32
     * (53 ≥ 2·24 + 2), so the bits are its bits.
     */
    private static void addRows(Tensor ids, Tensor src, Tensor table) {
        long[] id = checkedIds("scatterAddRows", ids, table);
        int d = table.dim(1), l = S.length();
        boolean bf16Table = table.dtype() == DType.BF16, bf16Src = src.dtype() == DType.BF16;
        MemorySegment st = table.segment(), ss = src.segment();
        MemorySegment rowT = bf16Table ? MemorySegment.ofArray(new float[d]) : null, rowS = bf16Src ? MemorySegment.ofArray(new float[d]) : null;
        Loop.Flat srcRow = new Loop.Flat(src);
        for (int n = 0; n < id.length; n++) {
            if (id[n] < 0) continue;
            long tb = table.offset() + id[n] * table.stride(0), sb = srcRow.at((long) n * d);
            MemorySegment to = st, add = ss;
            long t0 = tb, a0 = sb;
            if (bf16Table) {
                Bf16Lanes.widenRow(st, tb, rowT, 0, d);
                to = rowT;
                t0 = 0;
            }
            if (bf16Src) {
                Bf16Lanes.widenRow(ss, sb, rowS, 0, d);
                add = rowS;
                a0 = 0;
            }
            int j = 0;
            for (; j + l <= d; j += l) {
                FloatVector a = FloatVector.fromMemorySegment(S, to, (t0 + j) * 4, NATIVE);
                a.add(FloatVector.fromMemorySegment(S, add, (a0 + j) * 4, NATIVE)).intoMemorySegment(to, (t0 + j) * 4, NATIVE);
            }
            for (; j < d; j++) to.setAtIndex(Buf.F, t0 + j, to.getAtIndex(Buf.F, t0 + j) + add.getAtIndex(Buf.F, a0 + j));
            if (bf16Table) Bf16Lanes.narrowRow(rowT, 0, st, tb, d);
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
