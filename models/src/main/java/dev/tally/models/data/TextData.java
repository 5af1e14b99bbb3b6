package dev.tally.models.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * A tokenized corpus split into training and held-out tokens, served as [batch, seq] windows with next-token targets.
 *
 * <p>The held-out split is the last {@code evalFraction} of the token stream (files in sorted path order, records in
 * file order): it depends on the data alone — not on the seed, the method or the model — so every run and every method
 * of a comparison on the same data is evaluated on the same tokens. Batch k of a run is a pure function of (seed, k):
 * resuming at step k reproduces the uninterrupted run's batches, and methods compared with one seed see the same batches.
 *
 * <p>Files are tokenized once into a {@link TokenCache} and memory-mapped, so memory does not grow with the corpus.
 */
public final class TextData {
    /** The bundled corpus: Ambrose Bierce's The Devil's Dictionary (public domain). */
    public static final String BUNDLED = "devils-dictionary";

    private final String source;
    private final Tokenizer tokenizer;
    private final TokenStore tokens;
    private final long cut;

    private TextData(String source, Tokenizer tokenizer, TokenStore tokens, double evalFraction) {
        if (evalFraction <= 0 || evalFraction >= 1) throw new IllegalArgumentException("eval fraction must be in (0, 1)");
        this.source = source;
        this.tokenizer = tokenizer;
        this.tokens = tokens;
        this.cut = Math.round(tokens.size() * (1 - evalFraction));
    }

    /** As {@link #load(String, Tokenizer, double, Path, Consumer)} with the default cache folder, progress to stderr. */
    public static TextData load(String source, Tokenizer tokenizer, double evalFraction) throws IOException {
        return load(source, tokenizer, evalFraction, TokenCache.defaultDir(), System.err::println);
    }

    /**
     * The bundled corpus, a file (.txt, .md; .jsonl, .jsonl.gz, .json.gz with a {@code text} field per record) or every
     * such file under a folder. Files go through the token cache in {@code cacheDir}; {@code log} hears progress.
     */
    public static TextData load(String source, Tokenizer tokenizer, double evalFraction, Path cacheDir, Consumer<String> log) throws IOException {
        if (source == null || source.isBlank() || source.equals(BUNDLED)) {
            try (InputStream in = TextData.class.getResourceAsStream("devils-dictionary.txt")) {
                if (in == null) throw new IOException("bundled corpus missing from the jar");
                return new TextData(BUNDLED, tokenizer, new TokenStore.InMemory(TokenCache.tokenizeInMemory(BUNDLED, false, in, tokenizer)), evalFraction);
            }
        }
        List<Path> files = CorpusFiles.list(Path.of(source));
        return new TextData(source, tokenizer, TokenCache.load(files, tokenizer, cacheDir, log), evalFraction);
    }

    public String source() { return source; }
    public Tokenizer tokenizer() { return tokenizer; }
    public long trainTokens() { return cut; }
    public long evalTokens() { return tokens.size() - cut; }

    /** Inputs [batch·seq] and targets (inputs shifted by one) for training batch {@code index}. */
    public long[][] trainBatch(long seed, long index, int batch, int seq) {
        require(cut, seq, "training");
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index);
        long[] in = new long[batch * seq], out = new long[batch * seq];
        long range = cut - seq;
        for (int b = 0; b < batch; b++) {
            long start = range <= Integer.MAX_VALUE ? r.nextInt((int) range) : r.nextLong(range);
            for (int t = 0; t < seq; t++) {
                in[b * seq + t] = tokens.get(start + t);
                out[b * seq + t] = tokens.get(start + t + 1);
            }
        }
        return new long[][] {in, out};
    }

    /** Held-out batches: consecutive non-overlapping windows from the start of the held-out split; {@code count} at most. */
    public List<long[][]> evalBatches(int batch, int seq, int count) {
        long evalLen = evalTokens();
        require(evalLen, seq, "held-out");
        List<long[][]> out = new java.util.ArrayList<>();
        int per = batch * seq;
        long at = cut;
        while (out.size() < count && at + per + 1 <= tokens.size()) {
            long[] in = new long[per], tg = new long[per];
            for (int i = 0; i < per; i++) {
                in[i] = tokens.get(at + i);
                tg[i] = tokens.get(at + i + 1);
            }
            out.add(new long[][] {in, tg});
            at += per;
        }
        if (out.isEmpty()) throw new IllegalArgumentException("held-out split (" + evalLen + " tokens) is smaller than one batch");
        return out;
    }

    private static void require(long tokens, int seq, String what) {
        if (tokens <= seq + 1) throw new IllegalArgumentException("the " + what + " split has " + tokens
                + " tokens, too few for sequences of " + seq);
    }
}
