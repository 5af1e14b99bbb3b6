package dev.tally.engine.cuda;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Distribution;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Where the host waits for the GPU: embedding and scatterAddRows do not (an out-of-range id is reported at the next
 * synchronisation, naming the first failing call), so Cut Cross-Entropy's vocabulary-tile loop issues no host
 * synchronisation until its loss is read. Counted with CudaBackend's synchronisation counter. Skipped without a GPU.
 */
class CudaHostSyncTest {
    private static final Device GPU = Device.cuda(0);

    private static void assertReports(IndexOutOfBoundsException e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' missing in: " + e.getMessage());
    }

    @Test void anOutOfRangeIdIsReportedAtTheNextSynchronisationNamingTheCall() {
        TestDevices.assumeUsable(GPU);
        CudaBackend backend = (CudaBackend) Backends.of(GPU);
        Ops ops = backend.ops();
        try (MemoryArena arena = TestArenas.open(GPU)) {
            Tensor table = arena.allocate("emb.table", DType.F32, 10, 6), out = arena.allocate("emb.out", DType.F32, 3, 6);
            Tensor grad = arena.allocate("emb.grad", DType.F32, 10, 6), src = arena.allocate("emb.src", DType.F32, 3, 6);
            Tensor good = arena.allocate("ids.good", DType.I64, 3), bad = arena.allocate("ids.bad", DType.I64, 3);
            Tensor bad2 = arena.allocate("ids.bad2", DType.I32, 3), scalar = arena.allocate("scalar", DType.F32, 1);
            ops.random(table, Distribution.NORMAL, 1, 0, 0, 1);
            ops.random(src, Distribution.NORMAL, 2, 0, 0, 1);
            ops.fill(grad, 0);
            ops.fill(scalar, 2.5);
            good.copyFrom(new long[]{0, 9, -1});
            bad.copyFrom(new long[]{1, 10, 2});
            bad2.copyFrom(new long[]{12, 0, 0});
            ops.synchronize();

            // the call returns; the explicit synchronisation throws, naming it
            long syncs = backend.synchronizations();
            ops.embedding(table, bad, out);
            assertEquals(syncs, backend.synchronizations(), "embedding waited for the device");
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, ops::synchronize);
            assertReports(e, "embedding: id 10 (in ids.bad) is out of range for [10, 6] (emb.table, 10 rows)", "synchronize()");
            float[] rows = out.toFloatArray(); // the error was cleared: reading works, and the bad row was written as zeros
            for (int j = 0; j < 6; j++) assertEquals(0f, rows[6 + j], "row of the bad id");
            ops.embedding(table, good, out);
            ops.synchronize();

            // found by a read: item() (copyToHost)
            ops.scatterAddRows(bad2, src, grad);
            e = assertThrows(IndexOutOfBoundsException.class, scalar::item);
            assertReports(e, "scatterAddRows: id 12 (in ids.bad2)", "emb.grad", "copyToHost");
            assertEquals(2.5, scalar.item(), "reported once, then cleared");

            // several failing calls queued: the first one is named; found by a write (copyFromHost)
            ops.embedding(table, good, out);
            ops.embedding(table, bad, out);
            ops.scatterAddRows(bad2, src, grad);
            ops.embedding(table, bad, out);
            e = assertThrows(IndexOutOfBoundsException.class, () -> scalar.copyFrom(new float[]{1}));
            assertReports(e, "embedding: id 10 (in ids.bad)", "copyFromHost");
            assertFalse(e.getMessage().contains("ids.bad2"), e.getMessage());
            ops.scatterAddRows(good, src, grad);
            assertEquals(1.0, scalar.item(), "the write happened; nothing left pending");
        }
    }

    /**
     * The ops of CutCrossEntropy's backward tile loop, in its order (sorted vocabulary, device-side filter): no host
     * synchronisation for any number of tiles, one for the read after the loop.
     */
    @Test void aCutCrossEntropyTileLoopDoesNotWaitForTheDevice() {
        TestDevices.assumeUsable(GPU);
        CudaBackend backend = (CudaBackend) Backends.of(GPU);
        Ops ops = backend.ops();
        int n = 64, d = 32, v = 512, nb = 16, vt = 32;
        try (MemoryArena arena = TestArenas.open(GPU)) {
            Tensor e = arena.allocate("e", DType.F32, n, d), c = arena.allocate("c", DType.F32, v, d);
            Tensor lse = arena.allocate("lse", DType.F32, n, 1), mask = arena.allocate("mask", DType.F32, n);
            Tensor dE = arena.allocate("dE", DType.F32, n, d), dC = arena.allocate("dC", DType.F32, v, d);
            Tensor order = arena.allocate("order", DType.I32, v), targetPos = arena.allocate("target_pos", DType.I32, n);
            Tensor rows = arena.allocate("rows", DType.F32, vt, d), dRows = arena.allocate("d_rows", DType.F32, vt, d);
            Tensor tile = arena.allocate("tile", DType.F32, nb, vt), local = arena.allocate("local", DType.I32, nb);
            Tensor minusOne = arena.allocate("minus_one", DType.F32, nb), scale = arena.allocate("scale", DType.F32, 1);
            Tensor maxAbs = arena.allocate("max_abs", DType.F32, 1), small = arena.allocate("small", DType.F32, 1);
            Tensor gate = arena.allocate("gate", DType.F32, 1), skipped = arena.allocate("skipped", DType.F32, 1);
            ops.random(e, Distribution.NORMAL, 1, 0, 0, 1);
            ops.random(c, Distribution.NORMAL, 2, 0, 0, 1);
            ops.fill(lse, 3);
            ops.fill(mask, 1);
            long[] perm = new long[v], pos = new long[n];
            for (int i = 0; i < v; i++) perm[i] = (i * 37L) % v; // 37 is coprime with 512: a permutation
            for (int i = 0; i < n; i++) pos[i] = (i * 11L) % v;
            order.copyFrom(perm);
            targetPos.copyFrom(pos);
            ops.fill(dE, 0);
            ops.fill(dC, 0);
            ops.fill(minusOne, -1);
            ops.fill(scale, 1.0 / n);
            ops.fill(skipped, 0);
            ops.synchronize();

            long before = backend.synchronizations();
            int tiles = 0;
            for (int k0 = 0; k0 < v; k0 += vt) {
                Tensor ids = order.slice(0, k0, k0 + vt);
                ops.embedding(c, ids, rows);
                ops.fill(dRows, 0);
                for (int b0 = 0; b0 < n; b0 += nb, tiles++) {
                    Tensor eb = e.slice(0, b0, b0 + nb), p = tile;
                    ops.matmul(eb, rows.t(), p, 1, 0);
                    ops.binary(BinaryOp.SUB, p, lse.slice(0, b0, b0 + nb), p);
                    ops.unary(UnaryOp.EXP, p, p);
                    ops.binaryScalar(BinaryOp.SUB, targetPos.slice(0, b0, b0 + nb), k0, local);
                    ops.scatterAddColumns(local, minusOne, p);
                    ops.binary(BinaryOp.MUL, p, mask.slice(0, b0, b0 + nb).reshape(nb, 1), p);
                    ops.reduceAll(ReduceOp.MAX_ABS, p, maxAbs);
                    ops.binaryScalar(BinaryOp.LT, maxAbs, 1e-6, small);
                    ops.binaryScalar(BinaryOp.EQ, small, 0, gate);
                    ops.binary(BinaryOp.ADD, skipped, small, skipped);
                    ops.binary(BinaryOp.MUL, p, scale, p);
                    ops.binary(BinaryOp.MUL, p, gate, p);
                    ops.matmul(p, rows, dE.slice(0, b0, b0 + nb), 1, 1);
                    ops.matmul(p.t(), eb, dRows, 1, 1);
                }
                ops.scatterAddRows(ids, dRows, dC);
            }
            assertEquals(before, backend.synchronizations(), tiles + " tiles waited for the device");
            double skippedTiles = skipped.item(); // the one read after the loop
            assertEquals(before + 1, backend.synchronizations(), "the read after the loop is one synchronisation");
            assertTrue(skippedTiles >= 0 && skippedTiles <= tiles, "skipped " + skippedTiles + " of " + tiles);
            float[] grad = dC.toFloatArray();
            double sum = 0;
            for (float g : grad) sum += Math.abs(g);
            assertTrue(Double.isFinite(sum) && sum > 0, "dC was scattered: " + sum);
        }
    }
}
