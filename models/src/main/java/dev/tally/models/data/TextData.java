package dev.tally.models.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * A tokenized text corpus split into training and held-out tokens (the last {@code evalFraction} of the token stream,
 * so the split never depends on a seed), served as [batch, seq] windows with next-token targets. Batch k of a run is a
 * pure function of (seed, k): resuming at step k reproduces the uninterrupted run's batches.
 */
public final class TextData {
    /** The bundled corpus: Ambrose Bierce's The Devil's Dictionary (public domain). */
    public static final String BUNDLED = "devils-dictionary";

    private final String source;
    private final Tokenizer tokenizer;
    private final int[] train;
    private final int[] eval;

    private TextData(String source, Tokenizer tokenizer, int[] tokens, double evalFraction) {
        if (evalFraction <= 0 || evalFraction >= 1) throw new IllegalArgumentException("eval fraction must be in (0, 1)");
        this.source = source;
        this.tokenizer = tokenizer;
        int cut = (int) Math.round(tokens.length * (1 - evalFraction));
        this.train = java.util.Arrays.copyOfRange(tokens, 0, cut);
        this.eval = java.util.Arrays.copyOfRange(tokens, cut, tokens.length);
    }

    /** The bundled corpus, a text file, or every *.txt/*.md file under a folder (sorted by path). */
    public static TextData load(String source, Tokenizer tokenizer, double evalFraction) throws IOException {
        String text;
        if (source == null || source.isBlank() || source.equals(BUNDLED)) {
            try (InputStream in = TextData.class.getResourceAsStream("devils-dictionary.txt")) {
                if (in == null) throw new IOException("bundled corpus missing from the jar");
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            source = BUNDLED;
        } else {
            Path p = Path.of(source);
            if (Files.isDirectory(p)) {
                StringBuilder b = new StringBuilder();
                try (Stream<Path> s = Files.walk(p)) {
                    List<Path> files = s.filter(Files::isRegularFile)
                            .filter(f -> f.toString().endsWith(".txt") || f.toString().endsWith(".md")).sorted().toList();
                    if (files.isEmpty()) throw new IOException("no .txt or .md files under " + p);
                    for (Path f : files) b.append(readText(f)).append('\n');
                }
                text = b.toString();
            } else if (Files.isRegularFile(p)) {
                text = readText(p);
            } else if (!Files.exists(p)) {
                throw new IOException("data " + source + ": no such file or folder");
            } else {
                throw new IOException("data " + source + ": neither a regular file nor a folder");
            }
        }
        return new TextData(source, tokenizer, tokenizer.encode(text), evalFraction);
    }

    /** A file's text; bytes that are not UTF-8 are refused with the file and the byte offset where they start. */
    static String readText(Path file) throws IOException {
        if (!Files.isReadable(file)) throw new IOException("data file " + file + ": permission denied");
        byte[] bytes = Files.readAllBytes(file);
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = decoder.decode(in, out, true);
        if (r.isError()) {
            throw new IOException(String.format("data file %s is not UTF-8 text: byte 0x%02x at byte offset %,d does not start a valid"
                    + " UTF-8 sequence (a binary file?)", file, bytes[in.position()] & 0xFF, in.position()));
        }
        decoder.flush(out);
        return out.flip().toString();
    }

    public String source() { return source; }
    public Tokenizer tokenizer() { return tokenizer; }
    public int trainTokens() { return train.length; }
    public int evalTokens() { return eval.length; }

    /** Inputs [batch·seq] and targets (inputs shifted by one) for training batch {@code index}. */
    public long[][] trainBatch(long seed, long index, int batch, int seq) {
        require(train, seq, "training");
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index);
        long[] in = new long[batch * seq], out = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            int start = r.nextInt(train.length - seq);
            for (int t = 0; t < seq; t++) {
                in[b * seq + t] = train[start + t];
                out[b * seq + t] = train[start + t + 1];
            }
        }
        return new long[][] {in, out};
    }

    /** Held-out batches: consecutive non-overlapping windows; {@code count} of them at most. */
    public List<long[][]> evalBatches(int batch, int seq, int count) {
        require(eval, seq, "held-out");
        List<long[][]> out = new java.util.ArrayList<>();
        int per = batch * seq, at = 0;
        while (out.size() < count && at + per + 1 <= eval.length) {
            long[] in = new long[per], tg = new long[per];
            for (int i = 0; i < per; i++) {
                in[i] = eval[at + i];
                tg[i] = eval[at + i + 1];
            }
            out.add(new long[][] {in, tg});
            at += per;
        }
        if (out.isEmpty()) throw new IllegalArgumentException("held-out split (" + eval.length + " tokens) is smaller than one batch");
        return out;
    }

    private static void require(int[] tokens, int seq, String what) {
        if (tokens.length <= seq + 1) throw new IllegalArgumentException("the " + what + " split has " + tokens.length
                + " tokens, too few for sequences of " + seq);
    }
}
