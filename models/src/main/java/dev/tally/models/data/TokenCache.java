package dev.tally.models.data;

import dev.tally.engine.io.Json;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Tokenize once: a corpus's token ids in a cache folder, keyed by the data (each file's absolute path, size and
 * modification time) and the tokenizer, so later runs and every method of a {@code compare} map the same ids instead of
 * tokenizing again. A cache entry is {@code KEY.tokens} (little-endian ids, {@link TokenStore#widthFor} bytes each) and
 * {@code KEY.json} (what it was built from), both written to a temporary name and renamed, the JSON last: an
 * interrupted build leaves no entry. Documents are joined by the tokenizer's separator (between documents, none at the ends).
 */
public final class TokenCache {
    private TokenCache() {}

    /** Progress lines are printed at most this often while tokenizing. */
    private static final long PROGRESS_NANOS = 2_000_000_000L;

    /** {@code -Dtally.cache.dir}, else {@code TALLY_CACHE_DIR}, else {@code ~/.cache/tally/tokens}. */
    public static Path defaultDir() {
        String p = System.getProperty("tally.cache.dir");
        if (p == null || p.isBlank()) p = System.getenv("TALLY_CACHE_DIR");
        if (p != null && !p.isBlank()) return Path.of(p);
        return Path.of(System.getProperty("user.home"), ".cache", "tally", "tokens");
    }

    /** The cache key: a SHA-256 over the format version, the tokenizer and each file's path, size and mtime. */
    public static String key(List<Path> files, Tokenizer tokenizer) throws IOException {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            StringBuilder b = new StringBuilder("tally-token-cache-1\n").append(tokenizer.name()).append(' ').append(tokenizer.vocabSize()).append('\n');
            for (Path f : files) {
                b.append(f.toAbsolutePath().normalize()).append('\t').append(Files.size(f)).append('\t')
                        .append(Files.getLastModifiedTime(f).toMillis()).append('\n');
            }
            return HexFormat.of().formatHex(d.digest(b.toString().getBytes(StandardCharsets.UTF_8))).substring(0, 32);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The cached ids of {@code files}, tokenizing them first if no entry exists; {@code log} hears progress and the outcome. */
    public static TokenStore load(List<Path> files, Tokenizer tokenizer, Path cacheDir, Consumer<String> log) throws IOException {
        String key = key(files, tokenizer);
        Path tokens = cacheDir.resolve(key + ".tokens"), info = cacheDir.resolve(key + ".json");
        int width = TokenStore.widthFor(tokenizer.vocabSize());
        if (Files.isRegularFile(info) && Files.isRegularFile(tokens)) {
            Object count = Json.parseObject(Files.readString(info)).get("tokens");
            if (count instanceof Number n && n.longValue() * width == Files.size(tokens)) {
                log.accept(String.format("token cache: %,d tokens from %s", n.longValue(), tokens));
                return TokenStore.Mapped.open(tokens, width);
            }
            log.accept("token cache: " + info + " does not match " + tokens + "; tokenizing again");
        }
        Files.createDirectories(cacheDir);
        long totalBytes = 0;
        for (Path f : files) totalBytes += Files.size(f);
        long t0 = System.nanoTime();
        Path tmp = Files.createTempFile(cacheDir, "." + key + ".", ".tmp");
        long count;
        try {
            try (Writer w = new Writer(new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16), width, tokenizer)) {
                Progress progress = new Progress(log, totalBytes, t0, w);
                for (Path f : files) {
                    CorpusFiles.read(f, w, progress::filePosition);
                    progress.fileDone(Files.size(f));
                }
                count = w.count;
            }
            move(tmp, tokens);
        } finally {
            Files.deleteIfExists(tmp);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokens", count);
        m.put("tokenizer", tokenizer.name());
        m.put("width_bytes", (long) width);
        m.put("files", files.stream().map(f -> f.toAbsolutePath().normalize().toString()).toList());
        Path infoTmp = Files.createTempFile(cacheDir, "." + key + ".", ".json.tmp");
        try {
            Files.writeString(infoTmp, Json.write(m));
            move(infoTmp, info);
        } finally {
            Files.deleteIfExists(infoTmp);
        }
        double secs = (System.nanoTime() - t0) * 1e-9;
        log.accept(String.format("tokenized %d file(s), %s, into %,d tokens in %.1f s; cached at %s", files.size(),
                dev.tally.engine.MemoryLedger.human(totalBytes), count, secs, tokens));
        return TokenStore.Mapped.open(tokens, width);
    }

    /** Tokenizes everything into memory (the bundled corpus: small, and shipped inside the jar). */
    static int[] tokenizeInMemory(String name, boolean jsonLines, java.io.InputStream in, Tokenizer tokenizer) throws IOException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try (Writer w = new Writer(bytes, 4, tokenizer)) {
            CorpusFiles.read(name, jsonLines, in, w);
        }
        java.nio.IntBuffer ib = java.nio.ByteBuffer.wrap(bytes.toByteArray()).order(java.nio.ByteOrder.LITTLE_ENDIAN).asIntBuffer();
        int[] ids = new int[ib.remaining()];
        ib.get(ids);
        return ids;
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Encodes text and writes the ids; puts the separator before every document but the first. */
    private static final class Writer implements CorpusFiles.Sink, AutoCloseable {
        private final OutputStream out;
        private final int width;
        private final Tokenizer tokenizer;
        private final byte[] buf = new byte[1 << 16];
        private int used;
        private long count;
        private boolean documentOpen, anyDocument;

        Writer(OutputStream out, int width, Tokenizer tokenizer) {
            this.out = out;
            this.width = width;
            this.tokenizer = tokenizer;
        }

        @Override public void text(String text) throws IOException {
            if (!documentOpen) {
                if (anyDocument) write(tokenizer.documentSeparator());
                documentOpen = anyDocument = true;
            }
            write(tokenizer.encode(text));
        }

        @Override public void endOfDocument() { documentOpen = false; }

        private void write(int[] ids) throws IOException {
            for (int id : ids) {
                if (used + width > buf.length) flush();
                for (int k = 0; k < width; k++) buf[used++] = (byte) (id >>> (8 * k));
            }
            count += ids.length;
        }

        private void flush() throws IOException {
            out.write(buf, 0, used);
            used = 0;
        }

        @Override public void close() throws IOException {
            flush();
            out.close();
        }
    }

    /** A progress line every couple of seconds: bytes read of the total, tokens so far, throughput. */
    private static final class Progress {
        private final Consumer<String> log;
        private final long total, t0;
        private final Writer writer;
        private long doneFiles, last;

        Progress(Consumer<String> log, long total, long t0, Writer writer) {
            this.log = log;
            this.total = total;
            this.t0 = t0;
            this.writer = writer;
            this.last = t0;
        }

        void filePosition(long bytesInFile) {
            long now = System.nanoTime();
            if (now - last < PROGRESS_NANOS) return;
            last = now;
            long read = doneFiles + bytesInFile;
            double secs = (now - t0) * 1e-9;
            log.accept(String.format("tokenizing: %s of %s (%.0f%%), %,d tokens, %.1f MiB/s", dev.tally.engine.MemoryLedger.human(read),
                    dev.tally.engine.MemoryLedger.human(total), 100.0 * read / Math.max(1, total), writer.count, read / 1048576.0 / secs));
        }

        void fileDone(long size) { doneFiles += size; }
    }
}
