package dev.tally.cli;

import dev.tally.engine.io.Json;
import dev.tally.engine.testing.ChildJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The same seed gives the same run, bit for bit, whatever the JIT is doing: whole {@code tally train} runs in fresh JVMs
 * (the default tiered JIT on 2 CPU threads, C1 only on 1 thread, and a run stopped after step 10 on 1 thread then
 * resumed to 20 in a new JVM on 2 threads) log identical losses at every step and write byte-identical final checkpoints.
 */
class ReproducibleRunTest {
    @TempDir Path dir;

    private static final int STEPS = 20;

    private static void train(Path out, List<String> jvmFlags, String... extra) {
        List<String> args = new ArrayList<>(List.of("train", "--device", "cpu", "--batch", "2", "--seq", "32", "--seed", "3",
                "--eval-every", "1000", "--eval-batches", "1", "--no-progress", "--out", out.toString()));
        args.addAll(List.of(extra));
        ChildJvm.run(jvmFlags, Main.class.getName(), args, 600);
    }

    /** step → the logged loss's exact bits. */
    private static Map<Long, Long> losses(Path metrics) throws IOException {
        Map<Long, Long> m = new LinkedHashMap<>();
        for (String line : Files.readAllLines(metrics)) {
            Map<String, Object> row = Json.parseObject(line);
            if (row.containsKey("loss")) {
                m.put(((Number) row.get("step")).longValue(), Double.doubleToRawLongBits(((Number) row.get("loss")).doubleValue()));
            }
        }
        return m;
    }

    @Test
    void defaultJitC1AndStopResumeGiveIdenticalLossesAndCheckpointBytes() throws IOException {
        Path c2 = dir.resolve("c2"), c1 = dir.resolve("c1"), resumed = dir.resolve("resumed");
        String steps = Integer.toString(STEPS);
        train(c2, List.of("-Dtally.cpu.threads=2"), "--steps", steps);
        train(c1, List.of("-XX:TieredStopAtLevel=1", "-Dtally.cpu.threads=1"), "--steps", steps);
        train(resumed, List.of("-Dtally.cpu.threads=1"), "--steps", steps, "--stop-at", "10");
        assertEquals(10, losses(resumed.resolve("metrics.jsonl")).size(), "the first session ends after step 10");
        train(resumed, List.of("-Dtally.cpu.threads=2"), "--resume", resumed.resolve("checkpoint.safetensors").toString(),
                "--steps", steps);

        Map<Long, Long> reference = losses(c2.resolve("metrics.jsonl"));
        assertEquals(STEPS, reference.size());
        assertEquals(reference, losses(c1.resolve("metrics.jsonl")), "C1 on 1 thread vs default JIT on 2 threads");
        assertEquals(reference, losses(resumed.resolve("metrics.jsonl")), "10 steps + resume to 20 vs 20 straight");
        byte[] checkpoint = Files.readAllBytes(c2.resolve("checkpoint.safetensors"));
        assertArrayEquals(checkpoint, Files.readAllBytes(c1.resolve("checkpoint.safetensors")), "final checkpoint: C1 vs default JIT");
        assertArrayEquals(checkpoint, Files.readAllBytes(resumed.resolve("checkpoint.safetensors")), "final checkpoint: resumed vs straight");
    }
}
