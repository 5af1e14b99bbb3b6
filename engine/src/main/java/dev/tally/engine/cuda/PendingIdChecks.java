package dev.tally.engine.cuda;

import dev.tally.engine.Device;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The id-checked launches (embedding, scatterAddRows) queued since the last synchronisation, and the exception an
 * out-of-range id among them becomes.
 *
 * <p>A CUDA launch returns before its kernel runs, so a bad id cannot throw at the call without a stream stall per
 * call (two per vocabulary tile in Cut Cross-Entropy's backward). Instead each launch is given a code here; its kernel
 * writes that code and the id into the device's error word (compare-and-swap on a zero word: the first report wins,
 * and kernels on one stream run in order, so it is the first failing call); the host reads the word at the next
 * synchronisation it makes anyway (an explicit synchronize, a copy to or from the host) and {@link #settle} turns the
 * code back into the call's description.
 *
 * <p>Launches with the same op, ids label and table share a code: they would read the same in a message, and a tile
 * loop then keeps two entries, not two per tile. At most {@link #MAX_KEPT} distinct calls are kept between
 * synchronisations; later ones share {@link #OVERFLOW}, whose message names the first call that was not kept.
 *
 * <p>Only CudaOps' synchronisations read the word. Closing an arena does not (its cudaFree waits for the device, but a
 * close that threw would leave the ledger's bookkeeping half done): the checks stay pending, and the backend, which
 * outlives its arenas, reports them at its next synchronisation.
 */
final class PendingIdChecks {
    /** Distinct calls described between two synchronisations; bounds the memory of a loop that never synchronises. */
    static final int MAX_KEPT = 1024;
    /** The code of every call past {@link #MAX_KEPT} distinct ones. */
    static final long OVERFLOW = MAX_KEPT + 1L;

    /** What a message names of one call: the op, its ids, and the table they index. */
    record Call(String op, String idsLabel, Shape tableShape, String tableLabel) {
        static Call of(String op, Tensor ids, Tensor table) { return new Call(op, ids.label(), table.shape(), table.label()); }

        /** The CPU backend's wording (cpu.Indexing), so that one message reads the same on every device. */
        String outOfRange(long id) {
            return op + ": id " + id + " (in " + idsLabel + ") is out of range for " + tableShape + " (" + tableLabel + ", "
                    + tableShape.dim(0) + " rows)";
        }
    }

    /** Code k (from 1) names calls.get(k − 1). */
    private final List<Call> calls = new ArrayList<>();
    private final Map<Call, Long> codes = new HashMap<>();
    /** The first call given {@link #OVERFLOW}, or null. */
    private Call firstUnkept;

    /** Records a call whose kernel is about to be queued; returns the nonzero code the kernel reports a bad id with. */
    long launch(Call call) {
        Long known = codes.get(call);
        if (known != null) return known;
        if (calls.size() == MAX_KEPT) {
            if (firstUnkept == null) firstUnkept = call;
            return OVERFLOW;
        }
        calls.add(call);
        long code = calls.size();
        codes.put(call, code);
        return code;
    }

    /** True when no id-checked launch was queued since the last {@link #settle}: the error word cannot be set. */
    boolean isEmpty() { return calls.isEmpty() && firstUnkept == null; }

    /**
     * Settles every pending check with the error word read after the stream drained ({@code code} 0: every id was in
     * range) and forgets them; returns the exception for a set word, naming the failing call, device and the point
     * where it was found ({@code where}: "synchronize()", "copyToHost", …), or null. The caller clears the word.
     */
    IndexOutOfBoundsException settle(long code, long id, Device device, String where) {
        try {
            if (code == 0) return null;
            String found = "; found on " + device + " at " + where + ", the first synchronisation after the call (CUDA checks ids"
                    + " on the device; the call returned, writing zeros for the bad rows of an embedding and skipping them in a"
                    + " scatter)";
            if (code >= 1 && code <= calls.size()) return new IndexOutOfBoundsException(calls.get((int) code - 1).outOfRange(id) + found);
            if (code == OVERFLOW && firstUnkept != null) {
                return new IndexOutOfBoundsException(firstUnkept.outOfRange(id) + " (this call or a later one: more than " + MAX_KEPT
                        + " distinct id-checked calls were queued since the previous synchronisation, later ones are not told apart)"
                        + found);
            }
            return new IndexOutOfBoundsException("an id-checked kernel reported id " + id + " with code " + code
                    + ", which names no call queued since the previous synchronisation" + found);
        } finally {
            calls.clear();
            codes.clear();
            firstUnkept = null;
        }
    }
}
