package dev.tally.engine.cuda;

import dev.tally.engine.DType;
import dev.tally.engine.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/** A kernel argument passed by value: a scalar, a raw device pointer, or a tensor descriptor (struct TDesc). */
sealed interface KernelArg {
    /** Bytes this argument occupies in the launch's argument block. */
    long byteSize();

    void writeTo(MemorySegment at);

    record I32(int v) implements KernelArg {
        public long byteSize() { return 4; }
        public void writeTo(MemorySegment at) { at.set(ValueLayout.JAVA_INT, 0, v); }
    }

    record I64(long v) implements KernelArg {
        public long byteSize() { return 8; }
        public void writeTo(MemorySegment at) { at.set(ValueLayout.JAVA_LONG, 0, v); }
    }

    record F32(float v) implements KernelArg {
        public long byteSize() { return 4; }
        public void writeTo(MemorySegment at) { at.set(ValueLayout.JAVA_FLOAT, 0, v); }
    }

    record F64(double v) implements KernelArg {
        public long byteSize() { return 8; }
        public void writeTo(MemorySegment at) { at.set(ValueLayout.JAVA_DOUBLE, 0, v); }
    }

    /** A device pointer (e.g. {@code long long* err}). */
    record Ptr(long address) implements KernelArg {
        public long byteSize() { return 8; }
        public void writeTo(MemorySegment at) { at.set(ValueLayout.JAVA_LONG, 0, address); }
    }

    /**
     * struct TDesc of native/src/main/cuda/tally.cuh: {char* base; int dtype; int rank; long long numel; int dims[8];
     * long long strides[8];} — 120 bytes. {@code base} already includes the view's offset.
     */
    record Desc(long base, DType dtype, int[] dims, long[] strides) implements KernelArg {
        static final int MAX_RANK = 8;
        static final long SIZE = 120;

        public Desc {
            if (dims.length > MAX_RANK) {
                throw new IllegalArgumentException("CUDA kernels take tensors of rank <= " + MAX_RANK + ", got " + Arrays.toString(dims));
            }
        }

        static Desc of(Tensor t) {
            if (t.rank() > MAX_RANK) {
                throw new IllegalArgumentException("CUDA kernels take tensors of rank <= " + MAX_RANK + ", got " + t);
            }
            return new Desc(t.address(), t.dtype(), t.dims(), t.strides());
        }

        /** A contiguous row-major view of raw device memory (workspaces). */
        static Desc contiguous(long base, DType dtype, int... dims) {
            return new Desc(base, dtype, dims, dev.tally.engine.Shape.of(dims).contiguousStrides());
        }

        /** The same memory with the last two dimensions swapped (a transposed view). */
        Desc transposed() {
            int r = dims.length;
            int[] d = dims.clone();
            long[] s = strides.clone();
            d[r - 1] = dims[r - 2];
            d[r - 2] = dims[r - 1];
            s[r - 1] = strides[r - 2];
            s[r - 2] = strides[r - 1];
            return new Desc(base, dtype, d, s);
        }

        /**
         * The same elements with adjacent dimensions merged wherever every descriptor allows it (they all have the same
         * dims: an elementwise launch), so a contiguous launch becomes rank 1 and the kernels skip index arithmetic.
         */
        static Desc[] coalesce(Desc... ds) {
            int[] dims = ds[0].dims;
            int r = dims.length;
            if (r <= 1) return ds;
            java.util.ArrayDeque<Integer> outDims = new java.util.ArrayDeque<>();
            java.util.ArrayDeque<long[]> outStrides = new java.util.ArrayDeque<>();
            long cur = dims[r - 1];
            long[] curS = new long[ds.length];
            for (int j = 0; j < ds.length; j++) curS[j] = ds[j].strides[r - 1];
            for (int i = r - 2; i >= 0; i--) {
                int d = dims[i];
                if (d == 1) continue;
                if (cur == 1) {
                    cur = d;
                    for (int j = 0; j < ds.length; j++) curS[j] = ds[j].strides[i];
                    continue;
                }
                boolean merge = cur * d <= Integer.MAX_VALUE;
                for (int j = 0; j < ds.length && merge; j++) merge = ds[j].strides[i] == curS[j] * cur;
                if (merge) {
                    cur *= d;
                } else {
                    outDims.addFirst((int) cur);
                    outStrides.addFirst(curS.clone());
                    cur = d;
                    for (int j = 0; j < ds.length; j++) curS[j] = ds[j].strides[i];
                }
            }
            outDims.addFirst((int) cur);
            outStrides.addFirst(curS.clone());
            int[] nd = outDims.stream().mapToInt(Integer::intValue).toArray();
            long[][] st = outStrides.toArray(long[][]::new);
            Desc[] out = new Desc[ds.length];
            for (int j = 0; j < ds.length; j++) {
                long[] s = new long[nd.length];
                for (int i = 0; i < nd.length; i++) s[i] = st[i][j];
                out[j] = new Desc(ds[j].base, ds[j].dtype, nd, s);
            }
            return out;
        }

        long numel() {
            long n = 1;
            for (int d : dims) n *= d;
            return n;
        }

        public long byteSize() { return SIZE; }

        public void writeTo(MemorySegment at) {
            at.set(ValueLayout.JAVA_LONG, 0, base);
            at.set(ValueLayout.JAVA_INT, 8, dtype.ordinal());
            at.set(ValueLayout.JAVA_INT, 12, dims.length);
            at.set(ValueLayout.JAVA_LONG, 16, numel());
            for (int i = 0; i < MAX_RANK; i++) {
                at.set(ValueLayout.JAVA_INT, 24 + 4L * i, i < dims.length ? dims[i] : 1);
                at.set(ValueLayout.JAVA_LONG, 56 + 8L * i, i < strides.length ? strides[i] : 0);
            }
        }
    }
}
