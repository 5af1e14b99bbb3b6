package dev.tally.engine.cuda;

import dev.tally.engine.Tensor;

import java.lang.foreign.MemorySegment;

/** The device bytes a strided view spans, and the mapping between its packed row-major order and that span. */
record HostSpan(Tensor t, long firstElement, long elements) {
    static HostSpan of(Tensor t) {
        long lo = t.offset(), hi = t.offset();
        long[] s = t.strides();
        for (int i = 0; i < s.length; i++) {
            long span = s[i] * (t.dims()[i] - 1L);
            if (span < 0) lo += span; else hi += span;
        }
        return new HostSpan(t, lo, hi - lo + 1);
    }

    long bytes() { return elements * t.dtype().byteSize(); }

    long deviceStart() { return t.address() - (t.offset() - firstElement) * t.dtype().byteSize(); }

    /** Element byte offset inside the span of packed index i. */
    private long at(long i) {
        long off = t.offset() - firstElement;
        int[] dims = t.dims();
        long[] s = t.strides();
        for (int d = dims.length - 1; d >= 0; d--) {
            off += (i % dims[d]) * s[d];
            i /= dims[d];
        }
        return off * t.dtype().byteSize();
    }

    void scatter(MemorySegment packed, MemorySegment spanHost) {
        int es = t.dtype().byteSize();
        for (long i = 0; i < t.numel(); i++) MemorySegment.copy(packed, i * es, spanHost, at(i), es);
    }

    void gather(MemorySegment spanHost, MemorySegment packed) {
        int es = t.dtype().byteSize();
        for (long i = 0; i < t.numel(); i++) MemorySegment.copy(spanHost, at(i), packed, i * es, es);
    }
}
