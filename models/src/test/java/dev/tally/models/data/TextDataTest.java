package dev.tally.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TextDataTest {
    @TempDir Path dir;

    private final Tokenizer bytes = new Tokenizer.Bytes();

    private static void gz(Path file, String content) throws IOException {
        try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(file))) {
            o.write(content.getBytes(StandardCharsets.UTF_8));
        }
    }

    private TextData load(String source, List<String> log) throws IOException {
        return TextData.load(source, bytes, 0.25, dir.resolve("cache"), log::add);
    }

    /** The corpus's ids: train batches cannot show order, so read them through evalBatches on a split of 1/4. */
    private static int[] expected(Tokenizer t, String... docs) {
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < docs.length; i++) {
            if (i > 0) for (int s : t.documentSeparator()) ids.add(s);
            for (int x : t.encode(docs[i])) ids.add(x);
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] heldOut(TextData d) {
        List<long[][]> b = d.evalBatches(1, 1, Integer.MAX_VALUE);
        int[] out = new int[b.size() + 1];
        for (int i = 0; i < b.size(); i++) out[i] = (int) b.get(i)[0][0];
        out[b.size()] = (int) b.getLast()[1][0];
        return out;
    }

    @Test
    void jsonLinesGzAndFoldersGiveTheRecordsTextJoinedBySeparators() throws IOException {
        String[] docs = {"The first record.\nWith a second line é.", "Second «record»", "third"};
        String jsonl = "{\"text\": \"The first record.\\nWith a second line \\u00e9.\", \"url\": \"x\"}\n"
                + "{\"text\": \"Second «record»\", \"timestamp\": 1}\n\n{\"text\":\"third\"}\n";
        Files.writeString(dir.resolve("a.jsonl"), jsonl);
        gz(dir.resolve("a.jsonl.gz"), jsonl);
        int[] want = expected(bytes, docs);
        List<String> log = new ArrayList<>();
        for (String f : List.of("a.jsonl", "a.jsonl.gz")) {
            TextData d = load(dir.resolve(f).toString(), log);
            assertEquals(want.length, d.trainTokens() + d.evalTokens(), f);
            int[] tail = java.util.Arrays.copyOfRange(want, (int) d.trainTokens(), want.length);
            assertArrayEquals(tail, heldOut(d), f);
        }
        // a folder: files in sorted path order, each file's records, plain text files whole
        Path folder = dir.resolve("corpus");
        Files.createDirectories(folder.resolve("sub"));
        gz(folder.resolve("b.json.gz"), "{\"text\":\"bb\"}\n{\"text\":\"cc\"}\n");
        Files.writeString(folder.resolve("a.txt"), "plain\ntext\n");
        Files.writeString(folder.resolve("sub/c.jsonl"), "{\"text\":\"dd\"}");
        Files.writeString(folder.resolve("ignored.csv"), "x,y");
        TextData d = TextData.load(folder.toString(), bytes, 0.5, dir.resolve("cache"), log::add);
        int[] w = expected(bytes, "plain\ntext\n", "bb", "cc", "dd");
        assertEquals(w.length, d.trainTokens() + d.evalTokens());
        assertArrayEquals(java.util.Arrays.copyOfRange(w, (int) d.trainTokens(), w.length), heldOut(d));
    }

    @Test
    void gpt2IdsAreCachedWithTwoBytesAndEndOfTextBetweenRecords() throws IOException {
        Tokenizer gpt2 = new Tokenizer.Gpt2();
        Files.writeString(dir.resolve("c.jsonl"), "{\"text\":\"Hello world\"}\n{\"text\":\"Goodbye, world.\"}\n");
        TextData d = TextData.load(dir.resolve("c.jsonl").toString(), gpt2, 0.5, dir.resolve("cache"), s -> {});
        int[] want = expected(gpt2, "Hello world", "Goodbye, world.");
        assertTrue(java.util.Arrays.stream(want).anyMatch(x -> x == 50256));
        assertEquals(want.length, d.trainTokens() + d.evalTokens());
        assertArrayEquals(java.util.Arrays.copyOfRange(want, (int) d.trainTokens(), want.length), heldOut(d));
        try (var s = Files.list(dir.resolve("cache"))) {
            Path tokens = s.filter(p -> p.toString().endsWith(".tokens")).findFirst().orElseThrow();
            assertEquals(2L * want.length, Files.size(tokens));
        }
    }

    @Test
    void bundledCorpusIsTheWholeTextEncodedAndTheSplitIgnoresTheSeed() throws IOException {
        String text;
        try (InputStream in = TextData.class.getResourceAsStream("devils-dictionary.txt")) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        TextData d = TextData.load(TextData.BUNDLED, bytes, 0.05);
        int[] all = bytes.encode(text);
        assertEquals(all.length, d.trainTokens() + d.evalTokens());
        assertEquals(Math.round(all.length * 0.95), d.trainTokens());
        long[][] first = d.evalBatches(2, 16, 1).getFirst();
        for (int i = 0; i < 32; i++) assertEquals(all[(int) d.trainTokens() + i], first[0][i]);
        // batches are a function of (seed, index) only; windows come from the training split
        assertArrayEquals(d.trainBatch(7, 3, 4, 32)[0], TextData.load(TextData.BUNDLED, bytes, 0.05).trainBatch(7, 3, 4, 32)[0]);
        assertNotEquals(java.util.Arrays.toString(d.trainBatch(7, 3, 4, 32)[0]), java.util.Arrays.toString(d.trainBatch(8, 3, 4, 32)[0]));
    }

    @Test
    void theCacheIsReusedAndRebuiltWhenTheDataChanges() throws IOException {
        Path f = dir.resolve("d.jsonl");
        Files.writeString(f, "{\"text\":\"one two three four five six\"}\n");
        List<String> log = new ArrayList<>();
        TextData a = load(f.toString(), log);
        assertTrue(log.getLast().startsWith("tokenized 1 file(s)"), log.toString());
        TextData b = load(f.toString(), log);
        assertTrue(log.getLast().startsWith("token cache: "), log.toString());
        assertArrayEquals(heldOut(a), heldOut(b));
        Files.writeString(f, "{\"text\":\"something else entirely, and longer\"}\n");
        Files.setLastModifiedTime(f, FileTime.fromMillis(Files.getLastModifiedTime(f).toMillis() + 5000));
        TextData c = load(f.toString(), log);
        assertTrue(log.getLast().startsWith("tokenized 1 file(s)"), log.toString());
        assertNotEquals(a.trainTokens() + a.evalTokens(), c.trainTokens() + c.evalTokens());
        assertNotEquals(TokenCache.key(List.of(f), bytes), TokenCache.key(List.of(f), new Tokenizer.Gpt2()));
    }

    @Test
    void badRecordsNameTheFileAndLine() throws IOException {
        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(bad, "{\"text\":\"ok\"}\n{\"text\": \"unterminated}\n");
        IOException e = assertThrows(IOException.class, () -> load(bad.toString(), new ArrayList<>()));
        assertTrue(e.getMessage().startsWith(bad + ":2: invalid JSON"), e.getMessage());
        Files.writeString(bad, "{\"text\":\"ok\"}\n\n{\"content\":\"no text\"}\n");
        e = assertThrows(IOException.class, () -> load(bad.toString(), new ArrayList<>()));
        assertTrue(e.getMessage().startsWith(bad + ":3: record has no string 'text' field"), e.getMessage());
        Files.writeString(bad, "{\"text\":7}\n");
        e = assertThrows(IOException.class, () -> load(bad.toString(), new ArrayList<>()));
        assertTrue(e.getMessage().contains(":1: record has no string 'text'"), e.getMessage());
        Path latin1 = dir.resolve("latin1.txt");
        Files.write(latin1, new byte[] {'o', 'k', '\n', 'c', 'a', 'f', (byte) 0xE9, '\n'});
        e = assertThrows(IOException.class, () -> load(latin1.toString(), new ArrayList<>()));
        assertEquals("data file " + latin1 + " is not UTF-8 text: byte 0xe9 at byte offset 6 (line 2) does not start a valid UTF-8"
                + " sequence (a binary file?)", e.getMessage());
        gz(dir.resolve("bad.jsonl.gz"), "{\"text\":\"a\"}\n[1, 2]\n");
        e = assertThrows(IOException.class, () -> load(dir.resolve("bad.jsonl.gz").toString(), new ArrayList<>()));
        assertTrue(e.getMessage().contains("bad.jsonl.gz:2: invalid JSON"), e.getMessage());
        try (var s = Files.list(dir.resolve("cache"))) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tokens")), "a failed build leaves no cache entry");
        }
        e = assertThrows(IOException.class, () -> load(dir.resolve("missing.jsonl").toString(), new ArrayList<>()));
        assertEquals("data " + dir.resolve("missing.jsonl") + ": no such file or folder", e.getMessage());
    }

    /**
     * Streaming: a corpus four times larger than the heap it is tokenized with. A child JVM with -Xmx24m tokenizes
     * ~100 MiB of JSON-lines text (a 0.3 MiB .jsonl.gz) into the cache and reads windows from it.
     */
    @Test
    void aCorpusLargerThanTheHeapStreams() throws Exception {
        Path big = dir.resolve("big.jsonl.gz");
        long textBytes = 0;
        try (Writer w = new java.io.OutputStreamWriter(new GZIPOutputStream(Files.newOutputStream(big)), StandardCharsets.UTF_8)) {
            String para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(70);
            for (int i = 0; textBytes < 100L << 20; i++) {
                String t = i + " " + para;
                w.write("{\"text\":\"" + t + "\"}\n");
                textBytes += t.length();
            }
        }
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process p = new ProcessBuilder(java, "-Xmx24m", "--enable-native-access=ALL-UNNAMED", "-cp", dev.tally.engine.testing.ChildJvm.classPath(),
                StreamingMain.class.getName(), big.toString(), dir.resolve("cache").toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        long n = Long.parseLong(out.lines().filter(l -> l.startsWith("tokens ")).findFirst().orElseThrow(() -> new AssertionError(out)).substring(7));
        assertTrue(n > textBytes, out); // the text plus separators, one byte token each
        assertTrue(out.contains("tokenized 1 file(s)"), out);
    }

    /** The child process of {@link #aCorpusLargerThanTheHeapStreams}. */
    public static final class StreamingMain {
        public static void main(String[] args) throws IOException {
            TextData d = TextData.load(args[0], new Tokenizer.Bytes(), 0.01, Path.of(args[1]), System.out::println);
            for (int i = 0; i < 100; i++) d.trainBatch(1, i, 8, 64);
            d.evalBatches(8, 64, 4);
            System.out.println("tokens " + (d.trainTokens() + d.evalTokens()));
            System.out.println("max heap " + Runtime.getRuntime().maxMemory());
        }
    }
}
