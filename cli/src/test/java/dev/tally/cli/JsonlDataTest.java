package dev.tally.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

import static dev.tally.cli.CliRunner.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A C4-style .jsonl.gz shard trains, through the token cache, and a bad record stops the run naming file and line. */
class JsonlDataTest {
    @TempDir Path dir;

    @Test
    void aC4StyleShardTrainsAndEvaluates() throws IOException {
        System.setProperty("tally.cache.dir", dir.resolve("cache").toString());
        try {
            Path shard = dir.resolve("c4-train.00000-of-01024.json.gz");
            try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(shard))) {
                for (int i = 0; i < 400; i++) {
                    String rec = "{\"text\":\"Document " + i + ": the quick brown fox jumps over the lazy dog.\\nSecond line " + i
                            + ".\",\"timestamp\":\"2019-04-25T12:57:54Z\",\"url\":\"https://example.com/" + i + "\"}\n";
                    o.write(rec.getBytes(StandardCharsets.UTF_8));
                }
            }
            CliRunner.Result r = run(CliRunner.train(dir.resolve("run"), 3, "--data", shard.toString()));
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("data: " + shard + ", byte tokenizer"), r.out());
            assertTrue(r.err().contains("tokenized 1 file(s)"), r.err());
            assertTrue(Files.exists(dir.resolve("run/checkpoint.safetensors")));
            // eval reads the same data through the cache the run built
            CliRunner.Result e = run("eval", "--checkpoint", dir.resolve("run/checkpoint.safetensors").toString(), "--eval-batches", "2", "--device", "cpu");
            assertEquals(0, e.code(), e.err());
            assertTrue(e.err().contains("token cache: "), e.err());
            assertEquals(r.line("final held-out loss").split("\\s+")[3].replace(",", ""), e.line("held-out loss").split("\\s+")[2]);

            Path bad = dir.resolve("bad.jsonl");
            Files.writeString(bad, "{\"text\":\"fine\"}\n{\"txt\":\"typo\"}\n");
            CliRunner.Result b = run(CliRunner.train(dir.resolve("bad-run"), 1, "--data", bad.toString()));
            assertEquals(2, b.code());
            assertTrue(b.err().contains("tally: " + bad + ":2: record has no string 'text' field (keys: [txt])"), b.err());
        } finally {
            System.clearProperty("tally.cache.dir");
        }
    }
}
