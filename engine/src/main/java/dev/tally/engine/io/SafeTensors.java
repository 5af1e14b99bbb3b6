package dev.tally.engine.io;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Shape;
import dev.tally.engine.Storage;
import dev.tally.engine.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format (u64 little-endian header length · UTF-8 JSON header · raw little-endian data), readable by
 * PyTorch's loader. Reading is as strict as the reference reader and validates everything before touching data —
 * header length against the file size and the 100,000,000-byte limit, UTF-8, JSON shape, dtypes, sizes matching
 * dtype × shape, and tensors that tile the data section exactly (first at offset 0, no gaps, no overlaps, no bytes past
 * the last) — and maps the file rather than allocating, so a hostile file gets a {@link InvalidFileException} naming
 * the file and the reason, and never a huge allocation. Writing goes to a temporary file in the same folder, is synced,
 * renamed into place and the folder synced, so a crash never leaves a half-written file under the final name.
 */
public final class SafeTensors {
    /** Header sizes beyond this are refused, as the reference reader does (real headers are kilobytes). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private SafeTensors() {}

    /** A file that is not valid safetensors: the message names the file and what is wrong with it. */
    public static final class InvalidFileException extends IOException {
        InvalidFileException(Path path, String what) {
            super("invalid safetensors file " + path + ": " + what);
        }
    }

    /** One tensor's header entry. */
    public record Entry(String name, String dtype, int[] shape, long begin, long end) {
        public long numel() { return Shape.of(shape).numel(); }
        @Override public String toString() { return name + " " + dtype + Arrays.toString(shape); }
    }

    /** Element size of a safetensors dtype name; F64 is readable though Tally computes in ≤ 32-bit floats. */
    static int elementSize(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "BF16", "F16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL" -> 1;
            default -> -1;
        };
    }

    /** An opened, validated file; data is read on demand from a read-only mapping. */
    public static final class File implements AutoCloseable {
        private final Path path;
        private final Map<String, String> metadata;
        private final Map<String, Entry> entries;
        private final Arena mapping;
        private final MemorySegment data;

        private File(Path path, Map<String, String> metadata, Map<String, Entry> entries, Arena mapping, MemorySegment data) {
            this.path = path;
            this.metadata = metadata;
            this.entries = entries;
            this.mapping = mapping;
            this.data = data;
        }

        public Path path() { return path; }
        public Map<String, String> metadata() { return metadata; }
        /** Entries in header order. */
        public Map<String, Entry> entries() { return entries; }
        public boolean has(String name) { return entries.containsKey(name); }

        public Entry entry(String name) {
            Entry e = entries.get(name);
            if (e == null) throw new IllegalArgumentException(path + ": no tensor named '" + name + "'");
            return e;
        }

        /** Values of any numeric tensor as double. */
        public double[] doubles(String name) {
            Entry e = entry(name);
            int n = Math.toIntExact(e.numel());
            double[] out = new double[n];
            MemorySegment seg = data.asSlice(e.begin(), e.end() - e.begin());
            for (int i = 0; i < n; i++) out[i] = read(seg, e.dtype(), i);
            return out;
        }

        public float[] floats(String name) {
            double[] d = doubles(name);
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
            return f;
        }

        public long[] longs(String name) {
            Entry e = entry(name);
            int n = Math.toIntExact(e.numel());
            long[] out = new long[n];
            MemorySegment seg = data.asSlice(e.begin(), e.end() - e.begin());
            for (int i = 0; i < n; i++) {
                out[i] = switch (e.dtype()) {
                    case "I64", "U64" -> seg.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
                    case "I32" -> seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i);
                    case "U32" -> seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i) & 0xFFFFFFFFL;
                    default -> (long) read(seg, e.dtype(), i);
                };
            }
            return out;
        }

        /** Copies tensor {@code name} into {@code dst}, which must have the same dtype and shape. */
        public void readInto(String name, Tensor dst) {
            Entry e = entry(name);
            if (!e.dtype().equals(dst.dtype().safetensorsName()) || !Arrays.equals(e.shape(), dst.dims())) {
                throw new IllegalArgumentException(path + ": tensor '" + name + "' is " + e.dtype() + Arrays.toString(e.shape())
                        + " but " + dst.dtype().safetensorsName() + dst.shape() + " was expected");
            }
            dst.ops().copyFromHost(data.asSlice(e.begin(), e.end() - e.begin()), dst);
        }

        @Override public void close() { mapping.close(); }
    }

    private static double read(MemorySegment seg, String dtype, long i) {
        return switch (dtype) {
            case "F64" -> seg.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i);
            case "F32" -> seg.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case "BF16" -> DType.bf16ToF32(seg.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case "F16" -> DType.f16ToF32(seg.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case "I64" -> seg.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
            case "U64" -> seg.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
            case "I32" -> seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i);
            case "U32" -> seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i) & 0xFFFFFFFFL;
            case "I16" -> seg.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i);
            case "U16" -> seg.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) & 0xFFFF;
            case "I8" -> seg.get(ValueLayout.JAVA_BYTE, i);
            case "U8", "BOOL" -> seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
            default -> throw new IllegalStateException("unreachable dtype " + dtype);
        };
    }

    /**
     * Opens and validates a file. A file that is not valid safetensors gives an {@link InvalidFileException}; one that
     * cannot be read gives an {@link IOException} naming the file and the reason (no such file, a directory, ...).
     */
    public static File open(Path path) throws IOException {
        FileErrors.requireReadableFile(path, "safetensors file");
        long size = Files.size(path);
        if (size < 8) throw bad(path, "file is " + size + " bytes, shorter than the 8-byte header length");
        Arena mapping = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (len.hasRemaining()) if (ch.read(len) < 0) throw bad(path, "truncated header length");
            long n = len.getLong(0);
            if (n < 2 || n > size - 8) throw bad(path, "header length " + Long.toUnsignedString(n) + " does not fit a file of " + size + " bytes");
            if (n > MAX_HEADER_BYTES) throw bad(path, "header length " + n + " exceeds the " + MAX_HEADER_BYTES + "-byte limit");
            ByteBuffer hb = ByteBuffer.allocate((int) n);
            while (hb.hasRemaining()) if (ch.read(hb) < 0) throw bad(path, "truncated header");
            String headerText = utf8(path, hb.array());
            if (!headerText.startsWith("{")) throw bad(path, "header is not a JSON object (it does not start with '{')");
            Map<String, Object> header;
            try {
                header = Json.parseObject(headerText);
            } catch (IllegalArgumentException e) {
                throw bad(path, "header is not a JSON object (" + e.getMessage() + ")");
            }
            long dataSize = size - 8 - n;
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (Map.Entry<String, Object> kv : header.entrySet()) {
                if (kv.getKey().equals("__metadata__")) {
                    if (!(kv.getValue() instanceof Map<?, ?> m)) throw bad(path, "__metadata__ is not an object");
                    for (Map.Entry<?, ?> me : m.entrySet()) {
                        if (!(me.getValue() instanceof String sv)) throw bad(path, "__metadata__ value of '" + me.getKey() + "' is not a string");
                        metadata.put((String) me.getKey(), sv);
                    }
                    continue;
                }
                entries.put(kv.getKey(), entry(path, kv.getKey(), kv.getValue(), dataSize));
            }
            requireTiling(path, entries.values(), dataSize);
            MemorySegment whole = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, mapping);
            return new File(path, Collections.unmodifiableMap(metadata), Collections.unmodifiableMap(entries), mapping,
                    whole.asSlice(8 + n, dataSize));
        } catch (IOException | RuntimeException e) {
            mapping.close();
            throw e;
        }
    }

    /** The header as text; invalid UTF-8 is refused with the byte offset (within the header) where it starts. */
    private static String utf8(Path path, byte[] header) throws IOException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(header);
        CharBuffer out = CharBuffer.allocate(header.length);
        CoderResult r = decoder.decode(in, out, true);
        if (r.isError()) throw bad(path, "header is not valid UTF-8 (byte " + in.position() + " of the header, file offset " + (8 + in.position()) + ")");
        decoder.flush(out);
        return out.flip().toString();
    }

    /**
     * The reference reader's layout rule: sorted by offset, the tensors cover the data section exactly — the first at
     * offset 0, each starting where the previous ended, the last ending at the end of the file.
     */
    private static void requireTiling(Path path, java.util.Collection<Entry> entries, long dataSize) throws IOException {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long end = 0;
        String previous = null;
        for (Entry cur : sorted) {
            if (cur.begin() < end) throw bad(path, "tensors '" + previous + "' and '" + cur.name() + "' overlap");
            if (cur.begin() > end) {
                throw bad(path, previous == null ? "data starts at offset " + cur.begin() + " (tensor '" + cur.name() + "'), not 0"
                        : "gap of " + (cur.begin() - end) + " bytes between tensors '" + previous + "' and '" + cur.name() + "'");
            }
            end = cur.end();
            previous = cur.name();
        }
        if (end != dataSize) {
            throw bad(path, (dataSize - end) + " bytes past the " + (previous == null ? "header (the file has no tensors)"
                    : "last tensor '" + previous + "'"));
        }
    }

    private static Entry entry(Path path, String name, Object v, long dataSize) throws IOException {
        if (!(v instanceof Map<?, ?> m)) throw bad(path, "entry '" + name + "' is not an object");
        if (!(m.get("dtype") instanceof String dtype) || elementSize(dtype) < 0) {
            throw bad(path, "tensor '" + name + "' has unknown dtype " + m.get("dtype"));
        }
        if (!(m.get("shape") instanceof List<?> sl)) throw bad(path, "tensor '" + name + "' has no shape list");
        int[] shape = new int[sl.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!(sl.get(i) instanceof Long d) || d < 0 || d > Integer.MAX_VALUE) {
                throw bad(path, "tensor '" + name + "' has a bad dimension " + sl.get(i));
            }
            shape[i] = (int) (long) d;
        }
        if (!(m.get("data_offsets") instanceof List<?> ol) || ol.size() != 2
                || !(ol.get(0) instanceof Long b) || !(ol.get(1) instanceof Long e)) {
            throw bad(path, "tensor '" + name + "' needs data_offsets [begin, end]");
        }
        if (b < 0 || e < b || e > dataSize) {
            throw bad(path, "tensor '" + name + "' offsets [" + b + ", " + e + "] fall outside the " + dataSize + "-byte data section");
        }
        long expect;
        try {
            expect = Math.multiplyExact(Shape.of(shape).numel(), (long) elementSize(dtype));
        } catch (ArithmeticException ex) {
            throw bad(path, "tensor '" + name + "' shape " + Arrays.toString(shape) + " is too large");
        }
        if (e - b != expect) {
            throw bad(path, "tensor '" + name + "' is " + dtype + Arrays.toString(shape) + " = " + expect + " bytes but its offsets span " + (e - b));
        }
        return new Entry(name, dtype, shape, b, e);
    }

    private static InvalidFileException bad(Path path, String what) {
        return new InvalidFileException(path, what);
    }

    /** Writes tensors (any device; copied through host memory) in the given order, atomically. */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        write(path, tensors, metadata, null);
    }

    /**
     * As {@link #write(Path, Map, Map)}; with a ledger, the host copy each tensor passes through lives in an arena
     * booked there (category OTHER, sized for the largest tensor), so a run's checkpoint saves show in its ledger.
     */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata, MemoryLedger ledger) throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) header.put("__metadata__", new LinkedHashMap<>(metadata));
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            if (e.getKey().equals("__metadata__")) throw new IllegalArgumentException("'__metadata__' is not a tensor name");
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("dtype", t.dtype().safetensorsName());
            List<Long> shape = new ArrayList<>();
            for (int x : t.dims()) shape.add((long) x);
            d.put("shape", shape);
            d.put("data_offsets", List.of(offset, offset + t.byteSize()));
            offset += t.byteSize();
            header.put(e.getKey(), d);
        }
        byte[] hj = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int padded = (hj.length + 7) & ~7;
        byte[] h = Arrays.copyOf(hj, padded);
        Arrays.fill(h, hj.length, padded, (byte) ' ');
        Path dir = path.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        removeStaleTemporaries(dir, path.getFileName().toString());
        Path tmp = Files.createTempFile(dir, "." + path.getFileName() + ".", ".tmp");
        try {
            try { // temp files are created owner-only; the finished file should read like any other output
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException notPosix) {
                // non-POSIX file systems keep their defaults
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(h));
                if (ledger == null) {
                    for (Tensor t : tensors.values()) {
                        try (Arena host = Arena.ofConfined()) {
                            MemorySegment seg = host.allocate(Math.max(1, t.byteSize()), 8);
                            t.ops().copyToHost(t, seg);
                            writeFully(ch, seg.asSlice(0, t.byteSize()).asByteBuffer());
                        }
                    }
                } else {
                    long largest = tensors.values().stream().mapToLong(Tensor::byteSize).max().orElse(0);
                    try (dev.tally.engine.MemoryArena staging = new dev.tally.engine.MemoryArena(ledger, "safetensors.write", MemoryCategory.OTHER,
                            Device.CPU, Math.max(1, largest))) {
                        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                            try (var scope = staging.scope()) {
                                Storage s = staging.allocate(e.getValue().byteSize(), "safetensors.write." + e.getKey());
                                MemorySegment seg = staging.region().segment().asSlice(s.byteOffset(), e.getValue().byteSize());
                                e.getValue().ops().copyToHost(e.getValue(), seg);
                                writeFully(ch, seg.asByteBuffer());
                            }
                        }
                    }
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING);
            }
            syncDirectory(dir);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Temporary files of earlier writes of {@code name} that were killed before their rename (".name.*.tmp"). */
    static List<Path> staleTemporaries(Path dir, String name) throws IOException {
        if (dir == null || !Files.isDirectory(dir)) return List.of();
        String prefix = "." + name + ".";
        try (var s = Files.list(dir)) {
            return s.filter(p -> {
                String f = p.getFileName().toString();
                return f.startsWith(prefix) && f.endsWith(".tmp") && Files.isRegularFile(p);
            }).sorted().toList();
        }
    }

    private static void removeStaleTemporaries(Path dir, String name) throws IOException {
        for (Path stale : staleTemporaries(dir, name)) Files.deleteIfExists(stale);
    }

    /**
     * Makes the rename durable: syncs the folder's entry list. Returns false where the platform refuses to open or sync
     * a folder (e.g. Windows), which is tolerated — the file itself was synced before the rename.
     */
    static boolean syncDirectory(Path dir) {
        if (dir == null) return false;
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
            return true;
        } catch (IOException | UnsupportedOperationException refused) {
            return false;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
