package dev.tally.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.tally.cli.CliRunner.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code tally compare}: all files, resume after an interruption, finished methods skipped, same seed same numbers. */
class CompareTest {
    @TempDir Path dir;

    private static String[] compare(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("--opt", "apollo_mini:lr=0.02"));
        a.addAll(List.of(extra));
        return compareOf("adamw,apollo_mini", out, a.toArray(String[]::new));
    }

    private static String[] compareOf(String methods, Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("compare", "--optimizers", methods, "--steps", "4", "--eval-every", "2",
                "--eval-batches", "2", "--batch", "2", "--seq", "32", "--device", "cpu", "--out", out.toString()));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    /** compare.csv without the columns that depend on the machine's speed (tokens/s, wall time) and the command line. */
    private static List<String> figures(Path out) throws IOException {
        List<String> lines = Files.readAllLines(out.resolve("compare.csv"));
        List<String> header = List.of(lines.getFirst().split(","));
        List<String> rows = new ArrayList<>();
        for (String line : lines) {
            String[] c = line.split(",", header.size()); // the quoted JSON and command are the last two columns
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < header.size() - 2; i++) {
                if (!List.of("tokens_per_s", "wall_s").contains(header.get(i))) b.append(c[i]).append(',');
            }
            rows.add(b.toString());
        }
        return rows;
    }

    /** The training loss of every step (the last record of a step wins, as compare reads it). */
    private static java.util.Map<Long, Object> trainLosses(Path run) throws IOException {
        java.util.Map<Long, Object> m = new java.util.TreeMap<>();
        for (String l : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            var r = dev.tally.engine.io.Json.parseObject(l);
            if (r.containsKey("loss")) m.put(((Number) r.get("step")).longValue(), r.get("loss"));
        }
        return m;
    }

    @Test
    void writesEveryFileAndTheSameSeedGivesTheSameNumbers() throws IOException {
        Path a = dir.resolve("a"), b = dir.resolve("b");
        CliRunner.Result r = run(compare(a));
        assertEquals(0, r.code(), r.err() + r.out());
        for (String f : List.of("compare.csv", "compare.md", "curves.png", "memory-vs-perplexity.png", "adamw/checkpoint.safetensors",
                "apollo_mini/checkpoint.safetensors", "adamw/metrics.jsonl")) {
            assertTrue(Files.size(a.resolve(f)) > 0, f);
        }
        List<String> csv = Files.readAllLines(a.resolve("compare.csv"));
        assertEquals(3, csv.size());
        assertTrue(csv.get(0).startsWith("method,final_eval_ppl,best_eval_ppl,final_train_loss,planned_weights_bytes"), csv.get(0));
        assertTrue(csv.get(1).startsWith("adamw,") && csv.get(2).startsWith("apollo_mini,"), csv.toString());
        assertTrue(csv.get(2).contains("\"\"lr\"\":0.02") && csv.get(2).contains("\"\"scale\"\":128.0"), "override and paper preset: " + csv.get(2));
        String md = Files.readString(a.resolve("compare.md"));
        assertTrue(csv.get(1).endsWith(",\"tally compare --optimizers adamw,apollo_mini --steps 4 --eval-every 2 --eval-batches 2 --batch 2 --seq 32"
                + " --device cpu --out " + a + " --opt apollo_mini:lr=0.02\""), csv.get(1));
        assertTrue(md.contains("| adamw |") && md.contains("| apollo_mini |") && md.contains("curves.png"), md);
        // the planned optimizer state is the memtable's: APOLLO-Mini's is smaller than AdamW's
        String[] adamw = csv.get(1).split(","), mini = csv.get(2).split(",");
        assertTrue(Long.parseLong(mini[6]) < Long.parseLong(adamw[6]), csv.toString());
        assertEquals(Long.parseLong(adamw[4]), Long.parseLong(mini[4]), "same model, same weights bytes");
        // same initial weights and batches: the first step's loss is identical across methods
        assertEquals(firstLoss(a.resolve("adamw")), firstLoss(a.resolve("apollo_mini")));

        assertEquals(0, run(compare(b)).code());
        assertEquals(figures(a), figures(b), "same seed, same numbers");
        Path c = dir.resolve("c");
        assertEquals(0, run(compare(c, "--seed", "7")).code());
        assertNotEquals(figures(a).get(1), figures(c).get(1));
    }

    private static String firstLoss(Path run) throws IOException {
        return Files.readAllLines(run.resolve("metrics.jsonl")).stream().map(dev.tally.engine.io.Json::parseObject)
                .filter(m -> ((Number) m.get("step")).longValue() == 1 && m.containsKey("loss")).map(m -> m.get("loss").toString())
                .findFirst().orElseThrow();
    }

    @Test
    void anInterruptedComparisonResumesAndSkipsFinishedMethods() throws IOException {
        Path full = dir.resolve("full"), part = dir.resolve("part");
        assertEquals(0, run(compare(full)).code());
        // interrupted after method 1: only adamw ran to the end
        CliRunner.Result first = run(compareOf("adamw", part));
        assertEquals(0, first.code(), first.err());
        long adamwTime = Files.getLastModifiedTime(part.resolve("adamw/checkpoint.safetensors")).toMillis();
        // ...and the second method was cut at step 2 by a time box
        CliRunner.Result second = run(compare(part, "--stop-at", "2"));
        assertEquals(0, second.code(), second.err());
        assertTrue(second.out().contains("finished earlier (step 4): not run again"), second.out());
        assertTrue(Files.readString(part.resolve("compare.md")).contains("apollo_mini (unfinished)"));
        CliRunner.Result third = run(compare(part));
        assertEquals(0, third.code(), third.err());
        assertTrue(third.out().contains("resuming from step 2"), third.out());
        assertEquals(adamwTime, Files.getLastModifiedTime(part.resolve("adamw/checkpoint.safetensors")).toMillis(), "adamw was not rerun");
        assertEquals(figures(full).subList(0, 2), figures(part).subList(0, 2), "adamw's row is the uninterrupted comparison's");
        assertEquals(figures(full), figures(part), "the resumed comparison reproduces the uninterrupted one");
        assertEquals(trainLosses(full.resolve("apollo_mini")), trainLosses(part.resolve("apollo_mini")));
        assertEquals("true", Files.readAllLines(part.resolve("compare.csv")).get(2).split(",")[16]);
        // a rerun with other shared settings or other hyperparameters for a finished method is refused
        CliRunner.Result other = run(compare(part, "--seed", "9"));
        assertEquals(2, other.code());
        assertTrue(other.err().contains("holds a comparison with other settings"), other.err());
        other = run(compare(part, "--opt", "adamw:lr=0.5"));
        assertEquals(2, other.code());
        assertTrue(other.err().contains("was trained with"), other.err());
        other = run(compare(part, "--opt", "galore_adamw:lr=0.5"));
        assertTrue(other.code() == 2 && other.err().contains("galore_adamw is not among --optimizers"), other.err());
    }
}
