package dev.tally.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A view: storage + dtype + shape + strides + offset (strides and offset in elements). Views (slice, transpose, reshape
 * where legal, expand) share the storage and never copy. The tensor does no math itself: ops live in {@link Ops}, one
 * implementation per device; host transfers here are conveniences for tests and I/O.
 */
public final class Tensor {
    private final Storage storage;
    private final DType dtype;
    private final Shape shape;
    private final long[] strides;
    private final long offset;

    public Tensor(Storage storage, DType dtype, Shape shape, long[] strides, long offset) {
        if (strides.length != shape.rank()) {
            throw new IllegalArgumentException("strides " + Arrays.toString(strides) + " do not match shape " + shape);
        }
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides.clone();
        this.offset = offset;
        checkBounds();
    }

    static Tensor contiguous(Storage s, DType dtype, Shape shape) {
        return new Tensor(s, dtype, shape, shape.contiguousStrides(), 0);
    }

    private void checkBounds() {
        if (shape.numel() == 0) return;
        long lo = offset, hi = offset;
        for (int i = 0; i < strides.length; i++) {
            long span = strides[i] * (shape.dims()[i] - 1L);
            if (span < 0) lo += span; else hi += span;
        }
        long capacityElems = storage.byteSize() / dtype.byteSize();
        if (lo < 0 || hi >= capacityElems) {
            throw new IllegalArgumentException("view " + shape + " strides " + Arrays.toString(strides) + " offset " + offset
                    + " falls outside storage '" + storage.label() + "' of " + capacityElems + " " + dtype + " elements");
        }
    }

    // ---- accessors ----
    public Storage storage() { return storage; }
    public DType dtype() { return dtype; }
    public Shape shape() { return shape; }
    public int[] dims() { return shape.dims(); }
    public int rank() { return shape.rank(); }
    public int dim(int i) { return shape.dim(i); }
    public long numel() { return shape.numel(); }
    public long[] strides() { return strides.clone(); }
    public long stride(int i) { return strides[shape.normalize(i)]; }
    /** Offset of the first element, in elements, from the start of the storage. */
    public long offset() { return offset; }
    public Device device() { return storage.device(); }
    public String label() { return storage.label(); }
    public dev.tally.engine.MemoryArena arena() { return storage.arena(); }
    public Ops ops() { return Backends.of(device()).ops(); }

    /** Bytes this view spans if contiguous (numel × element size); what a copy of it would book before alignment. */
    public long byteSize() { return numel() * dtype.byteSize(); }

    /** Row-major contiguous, no gaps (size-1 dimensions may have any stride). */
    public boolean isContiguous() {
        long expect = 1;
        for (int i = shape.rank() - 1; i >= 0; i--) {
            int d = shape.dims()[i];
            if (d != 1 && strides[i] != expect) return false;
            expect *= d;
        }
        return true;
    }

    /**
     * The host memory of the whole storage (CPU only), checked: a closed arena or freed storage throws here.
     * Element {@code e} of this view lives at byte {@code (offset + Σ index·stride) · dtype.byteSize()} of the result.
     */
    public MemorySegment segment() {
        storage.checkAlive();
        MemorySegment base = storage.arena().region().segment();
        return base.asSlice(storage.byteOffset(), storage.byteSize());
    }

    /** Device address of the first element of this view (CUDA backends). */
    public long address() {
        storage.checkAlive();
        return storage.arena().region().address() + storage.byteOffset() + offset * dtype.byteSize();
    }

    // ---- views ----

    /** Same storage, new shape; legal when the view is contiguous (otherwise copy first). One dim may be -1. */
    public Tensor reshape(int... newDims) {
        int[] d = newDims.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < d.length; i++) {
            if (d[i] == -1) {
                if (infer >= 0) throw new IllegalArgumentException("reshape " + Arrays.toString(newDims) + ": more than one -1");
                infer = i;
            } else {
                known *= d[i];
            }
        }
        if (infer >= 0) {
            if (known == 0 || numel() % known != 0) {
                throw new IllegalArgumentException("cannot reshape " + shape + " to " + Arrays.toString(newDims) + " (" + label() + ")");
            }
            d[infer] = (int) (numel() / known);
        }
        Shape ns = Shape.of(d);
        if (ns.numel() != numel()) {
            throw new IllegalArgumentException("cannot reshape " + shape + " (" + numel() + " elements) to " + ns + " (" + label() + ")");
        }
        if (!isContiguous()) {
            throw new IllegalArgumentException("reshape of non-contiguous view " + shape + " strides " + Arrays.toString(strides)
                    + " (" + label() + ") needs a copy first");
        }
        return new Tensor(storage, dtype, ns, ns.contiguousStrides(), offset);
    }

    /** Swaps two dimensions (no copy). */
    public Tensor transpose(int a, int b) {
        int ia = shape.normalize(a), ib = shape.normalize(b);
        int[] d = shape.toArray();
        long[] s = strides.clone();
        int td = d[ia]; d[ia] = d[ib]; d[ib] = td;
        long ts = s[ia]; s[ia] = s[ib]; s[ib] = ts;
        return new Tensor(storage, dtype, Shape.of(d), s, offset);
    }

    /** Transpose of the last two dimensions. */
    public Tensor t() {
        if (rank() < 2) throw new IllegalArgumentException("t() needs rank >= 2, got " + shape + " (" + label() + ")");
        return transpose(-2, -1);
    }

    public Tensor permute(int... order) {
        if (order.length != rank()) throw new IllegalArgumentException("permute " + Arrays.toString(order) + " for shape " + shape);
        int[] d = new int[order.length];
        long[] s = new long[order.length];
        boolean[] seen = new boolean[order.length];
        for (int i = 0; i < order.length; i++) {
            int o = shape.normalize(order[i]);
            if (seen[o]) throw new IllegalArgumentException("permute " + Arrays.toString(order) + " repeats a dimension");
            seen[o] = true;
            d[i] = shape.dims()[o];
            s[i] = strides[o];
        }
        return new Tensor(storage, dtype, Shape.of(d), s, offset);
    }

    /** Elements [start, end) along {@code dim} (no copy). */
    public Tensor slice(int dim, int start, int end) {
        int di = shape.normalize(dim);
        int size = shape.dims()[di];
        if (start < 0 || end > size || start > end) {
            throw new IllegalArgumentException("slice [" + start + ", " + end + ") out of range for dim " + dim + " of " + shape
                    + " (" + label() + ")");
        }
        int[] d = shape.toArray();
        d[di] = end - start;
        return new Tensor(storage, dtype, Shape.of(d), strides, offset + start * strides[di]);
    }

    /** Index {@code index} along {@code dim}, removing that dimension. */
    public Tensor select(int dim, int index) {
        int di = shape.normalize(dim);
        if (index < 0 || index >= shape.dims()[di]) {
            throw new IllegalArgumentException("index " + index + " out of range for dim " + dim + " of " + shape + " (" + label() + ")");
        }
        int[] d = new int[rank() - 1];
        long[] s = new long[rank() - 1];
        for (int i = 0, j = 0; i < rank(); i++) {
            if (i == di) continue;
            d[j] = shape.dims()[i];
            s[j++] = strides[i];
        }
        return new Tensor(storage, dtype, Shape.of(d), s, offset + index * strides[di]);
    }

    public Tensor unsqueeze(int dim) {
        int di = dim < 0 ? dim + rank() + 1 : dim;
        if (di < 0 || di > rank()) throw new IllegalArgumentException("unsqueeze(" + dim + ") for shape " + shape);
        int[] d = new int[rank() + 1];
        long[] s = new long[rank() + 1];
        for (int i = 0, j = 0; i <= rank(); i++) {
            if (i == di) {
                d[i] = 1;
                s[i] = j < rank() ? strides[j] * shape.dims()[j] : 1;
            } else {
                d[i] = shape.dims()[j];
                s[i] = strides[j++];
            }
        }
        return new Tensor(storage, dtype, Shape.of(d), s, offset);
    }

    /** Broadcast view to {@code target} (size-1 dimensions get stride 0; leading dimensions may be added). */
    public Tensor expand(Shape target) {
        int r = target.rank();
        if (r < rank()) throw new IllegalArgumentException("cannot expand " + shape + " to smaller rank " + target);
        long[] s = new long[r];
        for (int i = 0; i < r; i++) {
            int j = i - (r - rank());
            int want = target.dims()[i];
            if (j < 0) {
                s[i] = 0;
            } else if (shape.dims()[j] == want) {
                s[i] = strides[j];
            } else if (shape.dims()[j] == 1) {
                s[i] = 0;
            } else {
                throw new IllegalArgumentException("cannot expand " + shape + " to " + target + " (" + label() + ")");
            }
        }
        return new Tensor(storage, dtype, target, s, offset);
    }

    /** Same bytes reinterpreted with another dtype of equal size (contiguous views only). */
    public Tensor viewAs(DType other) {
        if (other.byteSize() != dtype.byteSize() || !isContiguous()) {
            throw new IllegalArgumentException("cannot view " + dtype + " " + shape + " as " + other);
        }
        return new Tensor(storage, other, shape, strides, offset);
    }

    // ---- host transfer conveniences (through the device's ops) ----

    private static final java.util.concurrent.atomic.AtomicLong HOST_TRANSFERS = new java.util.concurrent.atomic.AtomicLong();

    /**
     * How many host transfers (the conveniences below: to/from Java arrays, item()) have run in this JVM. On a GPU each
     * is a stream synchronisation; tests count them to show a loop issues none.
     */
    public static long hostTransfers() { return HOST_TRANSFERS.get(); }

    /** Values as float (any dtype), row-major; copies through host memory on non-CPU devices. */
    public float[] toFloatArray() {
        double[] d = toDoubleArray();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    public double[] toDoubleArray() {
        if (numel() > Integer.MAX_VALUE) throw new IllegalStateException("tensor " + shape + " too large for a Java array");
        int n = (int) numel();
        HOST_TRANSFERS.incrementAndGet();
        try (var host = Arena.ofConfined()) {
            MemorySegment seg = host.allocate(Math.max(1, byteSize()), 8);
            ops().copyToHost(this, seg);
            double[] out = new double[n];
            for (int i = 0; i < n; i++) out[i] = HostCodec.read(seg, dtype, i);
            return out;
        }
    }

    public long[] toLongArray() {
        int n = Math.toIntExact(numel());
        HOST_TRANSFERS.incrementAndGet();
        try (var host = Arena.ofConfined()) {
            MemorySegment seg = host.allocate(Math.max(1, byteSize()), 8);
            ops().copyToHost(this, seg);
            long[] out = new long[n];
            for (int i = 0; i < n; i++) out[i] = HostCodec.readLong(seg, dtype, i);
            return out;
        }
    }

    /** Writes row-major values (converted to this tensor's dtype, bf16/f16 with round-to-nearest-even). */
    public Tensor copyFrom(float[] values) {
        double[] d = new double[values.length];
        for (int i = 0; i < d.length; i++) d[i] = values[i];
        return copyFrom(d);
    }

    public Tensor copyFrom(double[] values) {
        if (values.length != numel()) {
            throw new IllegalArgumentException(values.length + " values for tensor " + shape + " (" + label() + ")");
        }
        try (var host = Arena.ofConfined()) {
            MemorySegment seg = host.allocate(Math.max(1, byteSize()), 8);
            for (int i = 0; i < values.length; i++) HostCodec.write(seg, dtype, i, values[i]);
            HOST_TRANSFERS.incrementAndGet();
            ops().copyFromHost(seg, this);
        }
        return this;
    }

    public Tensor copyFrom(long[] values) {
        if (values.length != numel()) {
            throw new IllegalArgumentException(values.length + " values for tensor " + shape + " (" + label() + ")");
        }
        try (var host = Arena.ofConfined()) {
            MemorySegment seg = host.allocate(Math.max(1, byteSize()), 8);
            for (int i = 0; i < values.length; i++) HostCodec.writeLong(seg, dtype, i, values[i]);
            HOST_TRANSFERS.incrementAndGet();
            ops().copyFromHost(seg, this);
        }
        return this;
    }

    /** The single value of a one-element tensor. */
    public double item() {
        if (numel() != 1) throw new IllegalArgumentException("item() of tensor " + shape + " (" + label() + ") with " + numel() + " elements");
        return toDoubleArray()[0];
    }

    @Override public String toString() {
        return "Tensor[" + label() + " " + dtype + shape + " on " + device() + (isContiguous() ? "" : " strided") + "]";
    }

    /** Reading and writing single elements of contiguous host buffers, any dtype. */
    public static final class HostCodec {
        private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
        private static final ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED;
        private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
        private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG_UNALIGNED;

        private HostCodec() {}

        public static double read(MemorySegment seg, DType dt, long i) {
            return switch (dt) {
                case F32 -> seg.getAtIndex(F, i);
                case BF16 -> DType.bf16ToF32(seg.getAtIndex(S, i));
                case F16 -> DType.f16ToF32(seg.getAtIndex(S, i));
                case I8 -> seg.get(ValueLayout.JAVA_BYTE, i);
                case U8 -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                case I32 -> seg.getAtIndex(I, i);
                case I64 -> seg.getAtIndex(L, i);
            };
        }

        public static long readLong(MemorySegment seg, DType dt, long i) {
            return switch (dt) {
                case I64 -> seg.getAtIndex(L, i);
                case I32 -> seg.getAtIndex(I, i);
                case I8 -> seg.get(ValueLayout.JAVA_BYTE, i);
                case U8 -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                default -> (long) read(seg, dt, i);
            };
        }

        public static void write(MemorySegment seg, DType dt, long i, double v) {
            switch (dt) {
                case F32 -> seg.setAtIndex(F, i, (float) v);
                case BF16 -> seg.setAtIndex(S, i, DType.f32ToBf16((float) v));
                case F16 -> seg.setAtIndex(S, i, DType.f32ToF16((float) v));
                case I8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) v);
                case U8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) (int) v);
                case I32 -> seg.setAtIndex(I, i, (int) v);
                case I64 -> seg.setAtIndex(L, i, (long) v);
            }
        }

        public static void writeLong(MemorySegment seg, DType dt, long i, long v) {
            switch (dt) {
                case I64 -> seg.setAtIndex(L, i, v);
                case I32 -> seg.setAtIndex(I, i, (int) v);
                case I8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) v);
                case U8 -> seg.set(ValueLayout.JAVA_BYTE, i, (byte) v);
                default -> write(seg, dt, i, v);
            }
        }
    }
}
