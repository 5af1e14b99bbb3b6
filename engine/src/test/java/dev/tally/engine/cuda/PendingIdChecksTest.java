package dev.tally.engine.cuda;

import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.TestArenas;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * How CudaOps turns the device's error word, read at a synchronisation, into the exception for the call that queued a
 * bad id: each id-checked launch gets a code, the kernel writes the first failing launch's code and id, and the host
 * maps the code back. The GPU half (kernels writing the word, synchronize reading it) is in CudaVsCpuTest and
 * CudaHostSyncTest; this is the host's bookkeeping, which needs no GPU.
 */
class PendingIdChecksTest {
    private static final Device GPU = Device.cuda(0);

    private static PendingIdChecks.Call call(String op, String ids, String table, int rows) {
        return new PendingIdChecks.Call(op, ids, Shape.of(rows, 6), table);
    }

    @Test void nothingQueuedOrNoBadIdThrowsNothingAndForgetsTheCalls() {
        PendingIdChecks p = new PendingIdChecks();
        assertTrue(p.isEmpty(), "nothing queued: the error word need not be read");
        p.launch(call("embedding", "ids", "table", 10));
        p.launch(call("scatterAddRows", "ids", "grad", 10));
        assertFalse(p.isEmpty());
        assertNull(p.settle(0, 0, GPU, "synchronize()"), "a zero word: every id was in range");
        assertTrue(p.isEmpty(), "settled checks are forgotten");
    }

    @Test void eachDistinctCallHasItsOwnNonzeroCodeAndARepeatKeepsTheFirst() {
        PendingIdChecks p = new PendingIdChecks();
        PendingIdChecks.Call gather = call("embedding", "order", "c", 50), scatter = call("scatterAddRows", "order", "dC", 50);
        long g = p.launch(gather), s = p.launch(scatter);
        assertTrue(g != 0 && s != 0 && g != s, g + ", " + s); // 0 is the word's "no error"
        for (int tile = 0; tile < 1000; tile++) { // a tile loop: the same two calls again and again
            assertEquals(g, p.launch(call("embedding", "order", "c", 50)));
            assertEquals(s, p.launch(call("scatterAddRows", "order", "dC", 50)));
        }
        assertNotEquals(g, p.launch(call("embedding", "order", "c", 51)), "another table is another call");
    }

    @Test void theWordsCodeNamesTheFailingCallNotTheLastOneQueued() {
        PendingIdChecks.Call first = call("embedding", "ids.first", "emb.table", 10);
        PendingIdChecks.Call second = call("scatterAddRows", "ids.second", "emb.grad", 12);
        PendingIdChecks.Call last = call("embedding", "ids.last", "other.table", 30);
        for (PendingIdChecks.Call failing : new PendingIdChecks.Call[]{first, second}) {
            PendingIdChecks p = new PendingIdChecks();
            long[] codes = {p.launch(first), p.launch(second), p.launch(last)};
            long code = failing == first ? codes[0] : codes[1]; // what the first failing kernel wrote
            String m = p.settle(code, 77, GPU, "copyToHost").getMessage();
            assertTrue(m.startsWith(failing.op() + ": id 77 (in " + failing.idsLabel() + ") is out of range for "
                    + failing.tableShape() + " (" + failing.tableLabel() + ", " + failing.tableShape().dim(0) + " rows)"), m);
            assertFalse(m.contains("ids.last") || m.contains("other.table"), "names the failing call only: " + m);
            assertTrue(m.contains("cuda:0") && m.contains("copyToHost"), "says where it was found: " + m);
        }
    }

    @Test void aReportedErrorIsClearedAndTheNextSynchronisationStartsAfresh() {
        PendingIdChecks p = new PendingIdChecks();
        long code = p.launch(call("embedding", "ids", "table", 10));
        assertNotNull(p.settle(code, 10, GPU, "synchronize()"));
        assertTrue(p.isEmpty(), "reported once, then forgotten");
        assertNull(p.settle(0, 0, GPU, "synchronize()"), "the next synchronisation (word cleared) reports nothing");
        long again = p.launch(call("scatterAddRows", "ids2", "grad", 10));
        assertEquals(1, again, "codes start again after a synchronisation");
        assertTrue(p.settle(again, 11, GPU, "synchronize()").getMessage().startsWith("scatterAddRows: id 11 (in ids2)"),
                "a code now names the new call, not the reported one");
        // a code that names nothing queued (cannot happen while the host clears the word) still throws, saying so
        String stale = p.settle(5, 3, GPU, "synchronize()").getMessage();
        assertTrue(stale.contains("code 5") && stale.contains("id 3") && stale.contains("names no call"), stale);
    }

    @Test void pastTheKeptCallsLaterOnesShareOneCodeNamingTheFirstNotKept() {
        PendingIdChecks p = new PendingIdChecks();
        for (int i = 0; i < PendingIdChecks.MAX_KEPT; i++) assertEquals(i + 1, p.launch(call("embedding", "ids." + i, "t", 10)));
        assertEquals(PendingIdChecks.OVERFLOW, p.launch(call("embedding", "ids.unkept", "t", 10)));
        assertEquals(PendingIdChecks.OVERFLOW, p.launch(call("scatterAddRows", "ids.later", "t", 10)));
        assertEquals(7, p.launch(call("embedding", "ids.6", "t", 10)), "kept calls keep their codes");
        String m = p.settle(PendingIdChecks.OVERFLOW, 99, GPU, "synchronize()").getMessage();
        assertTrue(m.startsWith("embedding: id 99 (in ids.unkept)") && m.contains("this call or a later one")
                && m.contains(String.valueOf(PendingIdChecks.MAX_KEPT)), m);
        assertTrue(p.isEmpty());
        assertEquals(1, p.launch(call("embedding", "ids.0", "t", 10)), "the limit applies between two synchronisations");
    }

    /** The message starts with the CPU's own for the same bad id: one wording on every device. */
    @Test void theMessageReadsAsTheCpusForTheSameCall() {
        try (MemoryArena arena = TestArenas.open(Device.CPU)) {
            Tensor table = arena.allocate("emb.table", DType.F32, 10, 6), ids = arena.allocate("batch.ids", DType.I64, 3);
            Tensor out = arena.allocate("out", DType.F32, 3, 6);
            ids.copyFrom(new long[]{1, 10, 2});
            String cpu = assertThrows(IndexOutOfBoundsException.class, () -> Backends.of(Device.CPU).ops().embedding(table, ids, out))
                    .getMessage();
            PendingIdChecks p = new PendingIdChecks();
            long code = p.launch(PendingIdChecks.Call.of("embedding", ids, table));
            String gpu = p.settle(code, 10, GPU, "synchronize()").getMessage();
            assertTrue(gpu.startsWith(cpu), "cpu: " + cpu + "\ngpu: " + gpu);
            assertTrue(gpu.length() > cpu.length() && gpu.contains("first synchronisation after the call"), gpu);
        }
    }
}
