package dev.tally.models.data;

import dev.tally.engine.io.Json;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CoderResult;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * The files of a corpus and their text, streamed: plain text ({@code .txt}, {@code .md}) in blocks of whole lines, and
 * JSON lines ({@code .jsonl}, {@code .jsonl.gz}, {@code .json.gz} — the C4 shard format) one record's {@code text} field
 * at a time. Nothing holds more than one block or record, so memory does not grow with the corpus. Bad input (invalid
 * JSON, a record without a string {@code text}, bytes that are not UTF-8) throws naming the file and line.
 */
public final class CorpusFiles {
    private CorpusFiles() {}

    /** Plain-text blocks are cut after the first line end past this many characters. */
    static final int BLOCK_CHARS = 1 << 20;

    /** Receives a corpus's text in order. */
    public interface Sink {
        /** A piece of running text (a block of lines, or a whole JSON record's text). */
        void text(String text) throws IOException;

        /** The end of a file (plain text) or of a record (JSON lines). */
        void endOfDocument() throws IOException;
    }

    public static boolean isJsonLines(Path f) {
        String n = f.getFileName().toString();
        return n.endsWith(".jsonl") || n.endsWith(".jsonl.gz") || n.endsWith(".json.gz");
    }

    static boolean isPlainText(Path f) {
        String n = f.getFileName().toString();
        return n.endsWith(".txt") || n.endsWith(".md");
    }

    /** A file as given, or every corpus file under a folder, sorted by path (so the token order is fixed by the data). */
    public static List<Path> list(Path source) throws IOException {
        if (Files.isRegularFile(source)) return List.of(source);
        if (!Files.exists(source)) throw new IOException("data " + source + ": no such file or folder");
        if (!Files.isDirectory(source)) throw new IOException("data " + source + ": neither a regular file nor a folder");
        try (Stream<Path> s = Files.walk(source)) {
            List<Path> files = s.filter(Files::isRegularFile).filter(f -> isPlainText(f) || isJsonLines(f)).sorted().toList();
            if (files.isEmpty()) throw new IOException("no .txt, .md, .jsonl, .jsonl.gz or .json.gz files under " + source);
            return files;
        }
    }

    /** Streams one file's text to {@code sink}; {@code bytesRead} hears the file bytes consumed so far (for progress). */
    public static void read(Path file, Sink sink, LongConsumer bytesRead) throws IOException {
        try (InputStream raw = new Counting(Files.newInputStream(file), bytesRead)) {
            read(file.toString(), isJsonLines(file), file.getFileName().toString().endsWith(".gz") ? new GZIPInputStream(raw, 1 << 16) : raw, sink);
        }
    }

    /** Streams text from {@code in}; {@code name} appears in error messages. */
    public static void read(String name, boolean jsonLines, InputStream in, Sink sink) throws IOException {
        LineReader lines = new LineReader(in);
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        StringBuilder block = new StringBuilder();
        long lineNo = 0, lineStart = 0; // lineStart: byte offset of the line in the (decompressed) text
        for (byte[] line; (line = lines.next()) != null; ) {
            lineNo++;
            ByteBuffer bytes = ByteBuffer.wrap(line, 0, lines.length());
            CharBuffer chars = CharBuffer.allocate(lines.length());
            CoderResult r = utf8.reset().decode(bytes, chars, true);
            if (r.isError()) {
                throw new IOException(String.format("data file %s is not UTF-8 text: byte 0x%02x at byte offset %,d (line %,d) does not"
                        + " start a valid UTF-8 sequence (a binary file?)", name, line[bytes.position()] & 0xFF, lineStart + bytes.position(), lineNo));
            }
            utf8.flush(chars);
            String s = chars.flip().toString();
            lineStart += lines.length();
            if (!jsonLines) {
                block.append(s);
                if (block.length() >= BLOCK_CHARS) {
                    sink.text(block.toString());
                    block.setLength(0);
                }
                continue;
            }
            if (s.isBlank()) continue;
            Map<String, Object> record;
            try {
                record = Json.parseObject(s);
            } catch (RuntimeException e) {
                throw new IOException(name + ":" + lineNo + ": invalid JSON (" + e.getMessage() + ")");
            }
            if (!(record.get("text") instanceof String text)) {
                throw new IOException(name + ":" + lineNo + ": record has no string 'text' field (keys: " + record.keySet() + ")");
            }
            sink.text(text);
            sink.endOfDocument();
        }
        if (!jsonLines) {
            if (!block.isEmpty()) sink.text(block.toString());
            sink.endOfDocument();
        }
    }

    /** Lines as raw bytes, each with its line end ('\n') if it had one; one reusable line buffer. */
    private static final class LineReader {
        private final InputStream in;
        private final byte[] chunk = new byte[1 << 16];
        private int pos, limit;
        private byte[] buf = new byte[1 << 12];
        private int length;

        LineReader(InputStream in) { this.in = in; }

        int length() { return length; }

        byte[] next() throws IOException {
            length = 0;
            while (true) {
                if (pos == limit) {
                    limit = in.read(chunk, 0, chunk.length);
                    pos = 0;
                    if (limit <= 0) {
                        limit = 0;
                        return length == 0 ? null : buf;
                    }
                }
                int end = pos;
                while (end < limit && chunk[end] != '\n') end++;
                boolean found = end < limit;
                if (found) end++;
                int n = end - pos;
                if (length + n > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, length + n));
                System.arraycopy(chunk, pos, buf, length, n);
                length += n;
                pos = end;
                if (found) return buf;
            }
        }
    }

    /** Reports the bytes read through it. */
    private static final class Counting extends FilterInputStream {
        private final LongConsumer report;
        private long count;

        Counting(InputStream in, LongConsumer report) {
            super(in);
            this.report = report;
        }

        @Override public int read() throws IOException {
            int b = super.read();
            if (b >= 0) report.accept(++count);
            return b;
        }

        @Override public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) report.accept(count += n);
            return n;
        }
    }
}
