package dev.tally.cli;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.io.Json;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.optim.OptimizerKind;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The hostile-input probes of `tally train` (and the small ones of memtable and bench): each refused clearly, nothing lost. */
class TrainProbesTest {
    @TempDir Path dir;

    record Result(int code, String out, String err) {}

    /** Runs {@code command} (a fresh Main unless given) in-process, capturing stdout and stderr. */
    static synchronized Result run(Object command, String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.commandLine(command).execute(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    static Result run(String... args) { return run(new Main(), args); }

    /** A small adamw run's arguments (CPU, batch 2 × seq 32). */
    static String[] train(Path out, int steps, String... extra) {
        Map<String, String> flags = new LinkedHashMap<>();
        for (String[] kv : new String[][] {{"--device", "cpu"}, {"--batch", "2"}, {"--seq", "32"}, {"--steps", Integer.toString(steps)},
                {"--eval-every", "1000"}, {"--eval-batches", "2"}, {"--out", out.toString()}, {"--optimizer", "adamw"}, {"--lr", "0.003"}}) {
            flags.put(kv[0], kv[1]);
        }
        for (int i = 0; i < extra.length; i += 2) flags.put(extra[i], extra[i + 1]); // extras replace the defaults
        List<String> a = new ArrayList<>(List.of("train", "--no-progress"));
        flags.forEach((k, v) -> { a.add(k); a.add(v); });
        return a.toArray(String[]::new);
    }

    /** A train subcommand's arguments for a TrainCommand instance (no leading "train"). */
    static String[] trainOnly(Path out, int steps, String... extra) {
        String[] a = train(out, steps, extra);
        return Arrays.copyOfRange(a, 1, a.length);
    }

    private static void refused(Result r, String... fragments) {
        assertEquals(2, r.code(), r.out() + r.err());
        for (String f : fragments) assertTrue(r.err().contains(f), "expected '" + f + "' in: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(r.out().contains("wrote"), "nothing claimed written: " + r.out());
    }

    private static List<Long> trainSteps(Path metrics) throws IOException {
        return Files.readAllLines(metrics).stream().map(Json::parseObject).filter(m -> m.containsKey("loss"))
                .map(m -> ((Number) m.get("step")).longValue()).toList();
    }

    private static List<Double> losses(Path metrics) throws IOException {
        return Files.readAllLines(metrics).stream().map(Json::parseObject).filter(m -> m.containsKey("loss"))
                .map(m -> ((Number) m.get("loss")).doubleValue()).toList();
    }

    private static String meta(Path ckpt, String key) throws IOException {
        try (SafeTensors.File f = SafeTensors.open(ckpt)) {
            return f.metadata().get(key);
        }
    }

    @Test
    void everyFlagIsCheckedBeforeAnythingIsWritten() {
        Path out = dir.resolve("never");
        Object[][] probes = {
                {new String[] {"--steps", "0"}, "--steps must be >= 1, got 0"},
                {new String[] {"--eval-every", "0"}, "--eval-every must be >= 1, got 0"},
                {new String[] {"--eval-batches", "0"}, "--eval-batches must be >= 1, got 0"},
                {new String[] {"--eval-batches", "-3"}, "--eval-batches must be >= 1, got -3"},
                {new String[] {"--accum", "0"}, "--accum must be >= 1"},
                {new String[] {"--batch", "65536", "--seq", "65536"}, "--batch 65536 x --seq 65536 = 4,294,967,296 tokens per micro-batch exceeds"},
                {new String[] {"--lr", "NaN"}, "--lr must be a finite number >= 0, got NaN"},
                {new String[] {"--lr", "Infinity"}, "--lr must be a finite number >= 0, got Infinity"},
                {new String[] {"--lr", "-0.01"}, "--lr must be a finite number >= 0, got -0.01"},
                {new String[] {"--clip", "NaN"}, "--clip must be a finite number >= 0, got NaN"},
                {new String[] {"--clip", "-1"}, "--clip must be a finite number >= 0, got -1.0"},
                {new String[] {"--min-lr-ratio", "1.5"}, "--min-lr-ratio must be in [0, 1]"},
                {new String[] {"--warmup", "-1"}, "--warmup must be in [0, --steps 4], got -1"},
                {new String[] {"--checkpoint-every", "-1"}, "--checkpoint-every must be >= 0"},
                {new String[] {"--stop-at", "0"}, "--stop-at must be >= 1, got 0"},
                {new String[] {"--stop-at", "9"}, "--stop-at 9 is beyond --steps 4"},
        };
        refused(run(concat(train(out, 4, "--clip", "1"), "--layerwise")), "--clip needs every gradient at once; it cannot be combined with --layerwise");
        for (Object[] p : probes) {
            Result r = run(train(out, 4, (String[]) p[0]));
            refused(r, "tally: " + p[1]);
            assertFalse(Files.exists(out), Arrays.toString((String[]) p[0]) + " created the output folder");
        }
    }

    @Test
    void dataProblemsNameTheFileAndTheReason() throws IOException {
        Path out = dir.resolve("out");
        Path binary = dir.resolve("image.txt");
        byte[] bytes = new byte[4000];
        Arrays.fill(bytes, (byte) 'a');
        bytes[1234] = (byte) 0x89; // a PNG-style byte: not UTF-8
        Files.write(binary, bytes);
        refused(run(train(out, 2, "--data", binary.toString())), "data file " + binary + " is not UTF-8 text: byte 0x89 at byte offset 1,234");
        Path small = dir.resolve("small.txt");
        Files.writeString(small, "tiny corpus ".repeat(200)); // 2,400 bytes: 120 held-out tokens
        refused(run(train(out, 2, "--data", small.toString(), "--batch", "8", "--seq", "64")),
                "the held-out split of " + small + " (the last 5%, 120 tokens) is smaller than one evaluation batch (--batch 8 x --seq 64 + 1 = 513 tokens)");
        Files.writeString(small, "too short");
        refused(run(train(out, 2, "--data", small.toString())), "has 9 training tokens, too few for sequences of --seq 32");
        refused(run(train(out, 2, "--data", dir.resolve("missing.txt").toString())), "data " + dir.resolve("missing.txt") + ": no such file");
        Path emptyDir = Files.createDirectory(dir.resolve("empty"));
        refused(run(train(out, 2, "--data", emptyDir.toString())), "no .txt, .md, .jsonl, .jsonl.gz or .json.gz files under " + emptyDir);
        refused(run(train(out, 2, "--resume", dir.resolve("nope.safetensors").toString())), "safetensors file " + dir.resolve("nope.safetensors") + ": no such file");
        refused(run(train(out, 2, "--resume", emptyDir.toString())), "safetensors file " + emptyDir + ": is a directory, not a file");
        refused(run(train(out, 2, "--model", dir.resolve("llama.json").toString())), "model config file " + dir.resolve("llama.json") + ": no such file");
        refused(run(train(out, 2, "--model", "llama_7b", "--batch", "8", "--seq", "2048", "--loss", "ce")), "the plan needs");
        assertFalse(Files.exists(out), "data and plan refusals do not create the output folder");
        Path aFile = Files.writeString(dir.resolve("a-file"), "x");
        refused(run(train(aFile, 2)), "--out " + aFile + ": is a file, not a folder");
        refused(run(train(aFile.resolve("sub"), 2)), aFile.resolve("sub").toString());
    }

    @Test
    void permissionDeniedIsSaid() throws IOException {
        // root reads every file whatever its mode, so this probe only means something for other users
        Assumptions.assumeFalse("root".equals(System.getProperty("user.name")), "running as root: file modes do not deny reads");
        Path locked = dir.resolve("locked.txt");
        Files.writeString(locked, "some text ".repeat(1000));
        Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("---------"));
        refused(run(train(dir.resolve("out"), 2, "--data", locked.toString())), locked + ": permission denied");
    }

    @Test
    void aFailingRunLeavesThePreviousRunsFilesAndRemovesStaleTemporaries() throws IOException {
        Path out = dir.resolve("out");
        Path stale = Files.createDirectories(out).resolve(".checkpoint.safetensors.4242.tmp");
        Files.write(stale, new byte[1000]); // what a save killed before its rename leaves
        assertEquals(0, run(train(out, 2)).code());
        assertFalse(Files.exists(stale), "the next save removed the killed save's temporary file");
        byte[] metrics = Files.readAllBytes(out.resolve("metrics.jsonl")), ckpt = Files.readAllBytes(out.resolve("checkpoint.safetensors"));
        Path binary = Files.write(dir.resolve("bin.txt"), new byte[] {'h', 'i', (byte) 0xff, 0});
        refused(run(train(out, 2, "--data", binary.toString())), "not UTF-8");
        refused(run(train(out, 0)), "--steps must be >= 1");
        refused(run(train(out, 2, "--model", "llama_7b", "--batch", "8", "--seq", "2048", "--loss", "ce")), "the plan needs");
        // diverges in its first step: an lr of 1e39 is infinite in fp32, so the first update makes the weights non-finite
        refused(run(train(out, 3, "--lr", "1e39", "--checkpoint-every", "1")),
                "training diverged at step 1 (numbered as in metrics.jsonl): weight of", "this run wrote no checkpoint");
        assertArrayEquals(metrics, Files.readAllBytes(out.resolve("metrics.jsonl")), "previous metrics.jsonl kept");
        assertArrayEquals(ckpt, Files.readAllBytes(out.resolve("checkpoint.safetensors")), "previous checkpoint kept");
    }

    /** Sets one weight to NaN before {@code step}, as a numerical blow-up inside the step would. */
    static TrainCommand poisonedBefore(long step) {
        TrainCommand cmd = new TrainCommand();
        cmd.hooks = new TrainCommand.StepHooks() {
            @Override public void beforeStep(Trainer t, long s) {
                if (s != step) return;
                var w = t.model().parameter("lm_head.weight").value();
                float[] v = w.toFloatArray();
                v[5] = Float.NaN;
                w.copyFrom(v);
            }
        };
        return cmd;
    }

    @Test
    void aDivergedStepNeverOverwritesTheLastGoodCheckpoint() throws IOException {
        Path out = dir.resolve("out"), ckpt = out.resolve("checkpoint.safetensors");
        assertEquals(0, run(train(out, 6, "--stop-at", "2")).code());
        byte[] good = Files.readAllBytes(ckpt);
        Result r = run(poisonedBefore(3), "--resume", ckpt.toString(), "--out", out.toString(), "--no-progress", "--device", "cpu",
                "--checkpoint-every", "1");
        refused(r, "training diverged at step 3 (numbered as in metrics.jsonl): gradient of '", "the last good checkpoint is " + ckpt + " (step 2)");
        assertArrayEquals(good, Files.readAllBytes(ckpt));
        assertEquals(List.of(1L, 2L), trainSteps(out.resolve("metrics.jsonl")), "no row for the diverged step");
        // a fresh run diverging after a save keeps that save
        Path fresh = dir.resolve("fresh");
        refused(run(poisonedBefore(4), trainOnly(fresh, 6, "--checkpoint-every", "3")),
                "training diverged at step 4", "the last good checkpoint is " + fresh.resolve("checkpoint.safetensors") + " (step 3)");
        assertEquals("3", meta(fresh.resolve("checkpoint.safetensors"), "step"));
    }

    @Test
    void nonFiniteGradientsAndWeightsAreCaughtByTheTrainer() {
        LlamaConfig c = LlamaConfig.named("tiny");
        Trainer.Settings s = RunSetup.settings(c, dev.tally.engine.DType.F32, 1, 8, 1, "cce", false, Device.CPU, 1, 0);
        OptimizerKind kind = OptimizerKind.ADAMW;
        long[] ids = new long[8];
        for (int i = 0; i < 8; i++) ids[i] = i + 1;
        try (Trainer t = new Trainer(s, RunSetup.factory(kind, RunSetup.hyper(kind, c, Map.of("lr", 0.001))), new MemoryLedger())) {
            t.step(new long[][] {ids}, new long[][] {ids}, 1.0);
            var w = t.model().parameter("lm_head.weight").value();
            float[] v = w.toFloatArray();
            v[3] = Float.NaN;
            w.copyFrom(v);
            Trainer.NonFiniteException e = assertThrows(Trainer.NonFiniteException.class, () -> t.step(new long[][] {ids}, new long[][] {ids}, 1.0));
            assertTrue(e.getMessage().startsWith("gradient of '"), e.getMessage());
        }
        Trainer.Settings layerwise = RunSetup.settings(c, dev.tally.engine.DType.F32, 1, 8, 1, "cce", true, Device.CPU, 1, 0);
        try (Trainer t = new Trainer(layerwise, RunSetup.factory(kind, RunSetup.hyper(kind, c, Map.of("lr", 1e39))), new MemoryLedger())) {
            Trainer.NonFiniteException e = assertThrows(Trainer.NonFiniteException.class, () -> t.step(new long[][] {ids}, new long[][] {ids}, 1.0));
            assertTrue(e.getMessage().startsWith("weight of '"), e.getMessage());
        }
    }

    /** A train command whose evaluation at {@code step} fails, as an out-of-memory or I/O error there would. */
    static TrainCommand evaluationFailsAt(long step) {
        TrainCommand cmd = new TrainCommand();
        cmd.hooks = new TrainCommand.StepHooks() {
            @Override public void beforeEvaluation(Trainer t, long s) {
                if (s == step) throw new IllegalStateException("evaluation failed on purpose at step " + s);
            }
        };
        return cmd;
    }

    @Test
    void theCheckpointIsWrittenBeforeEvaluating() throws IOException {
        Path out = dir.resolve("out");
        refused(run(evaluationFailsAt(3), trainOnly(out, 3)), "evaluation failed on purpose at step 3");
        assertEquals("3", meta(out.resolve("checkpoint.safetensors"), "step"), "the last step's checkpoint exists although its evaluation failed");
        Path every = dir.resolve("every");
        refused(run(evaluationFailsAt(2), trainOnly(every, 6, "--eval-every", "2", "--checkpoint-every", "2")), "on purpose at step 2");
        assertEquals("2", meta(every.resolve("checkpoint.safetensors"), "step"));
    }

    @Test
    void aResumedRunDropsMetricsRowsPastItsCheckpoint() throws IOException {
        Path full = dir.resolve("full"), crashed = dir.resolve("crashed");
        assertEquals(0, run(train(full, 6, "--eval-every", "5")).code());
        // checkpoints at 3; steps 4 and 5 are logged, then the evaluation at 5 dies: the rows for 4 and 5 outlive the checkpoint
        refused(run(evaluationFailsAt(5), trainOnly(crashed, 6, "--eval-every", "5", "--checkpoint-every", "3")), "on purpose at step 5");
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L), trainSteps(crashed.resolve("metrics.jsonl")));
        Files.writeString(crashed.resolve("metrics.jsonl"), "{\"step\": 6, \"lo", java.nio.file.StandardOpenOption.APPEND); // torn line
        Result r = run(train(crashed, 6, "--resume", crashed.resolve("checkpoint.safetensors").toString(), "--eval-every", "5"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("resumed from") && r.out().contains("at step 3"), r.out());
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L), trainSteps(crashed.resolve("metrics.jsonl")), "each step once");
        assertEquals(losses(full.resolve("metrics.jsonl")), losses(crashed.resolve("metrics.jsonl")), "and the same losses as the straight run");
        List<String> evalRows = Files.readAllLines(crashed.resolve("metrics.jsonl")).stream().filter(l -> l.contains("eval_loss")).toList();
        assertEquals(2, evalRows.size(), "evaluations at 5 and at the end: " + evalRows);
    }

    @Test
    void resumeHonoursOrRefusesStepsAndStopAt() throws IOException {
        Path out = dir.resolve("out"), ckpt = out.resolve("checkpoint.safetensors");
        assertEquals(0, run(train(out, 6, "--stop-at", "3")).code());
        byte[] at3 = Files.readAllBytes(ckpt);
        String[] resume = {"train", "--resume", ckpt.toString(), "--out", out.toString(), "--no-progress", "--device", "cpu"};
        refused(run(concat(resume, "--stop-at", "3")), "--stop-at 3 is not after the checkpoint's step 3: there is nothing to train");
        refused(run(concat(resume, "--stop-at", "2")), "--stop-at 2 is not after the checkpoint's step 3");
        refused(run(concat(resume, "--steps", "3")), "--steps 3 is not beyond the checkpoint's step 3: there is nothing to train");
        refused(run(concat(resume, "--stop-at", "7")), "--stop-at 7 is beyond --steps 6");
        refused(run(concat(resume, "--lr", "0.1")), "--lr 0.1 differs from checkpoint " + ckpt + "'s 0.003: a resumed run keeps the settings");
        refused(run(concat(resume, "--optimizer", "apollo_mini")), "--optimizer apollo_mini differs from checkpoint");
        refused(run(concat(resume, "--batch", "4")), "--batch 4 differs");
        refused(run(concat(resume, "--opt", "weight_decay=0.5")), "--opt weight_decay 0.5 differs");
        assertArrayEquals(at3, Files.readAllBytes(ckpt), "refusals leave the checkpoint as it was");
        // --steps given explicitly, even at its default 300, is honoured; --stop-at ends the session there
        Result r = run(concat(resume, "--steps", "300", "--stop-at", "4", "--lr", "0.003", "--optimizer", "adamw"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("--steps 300 replaces the checkpoint's 6"), r.out());
        assertEquals("300", meta(ckpt, "steps"));
        assertEquals("4", meta(ckpt, "step"));
        assertTrue(r.out().contains("wrote " + out.resolve("metrics.jsonl") + ", loss.png, memory.png, checkpoint.safetensors (step 4)"), r.out());
        r = run(concat(resume, "--steps", "5"));
        assertEquals(0, r.code(), r.err());
        assertEquals("5", meta(ckpt, "step"));
        refused(run(resume), "is at step 5 of 5: there is nothing to train (give a larger --steps to extend the run)");
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** Rewrites one metadata value of a safetensors file in place (same tensors and data), as a hand edit would. */
    static void relabel(Path file, String key, String value) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        int n = (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        Map<String, Object> header = new LinkedHashMap<>(Json.parseObject(new String(bytes, 8, n, StandardCharsets.UTF_8)));
        @SuppressWarnings("unchecked") Map<String, Object> meta = new LinkedHashMap<>((Map<String, Object>) header.get("__metadata__"));
        meta.put(key, value);
        header.put("__metadata__", meta);
        byte[] h = Json.write(header).getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + bytes.length - 8 - n).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(bytes, 8 + n, bytes.length - 8 - n);
        Files.write(file, b.array());
    }

    @Test
    void aCheckpointRelabelledWithAnotherOptimizerIsRefused() throws IOException {
        Path out = dir.resolve("out"), ckpt = out.resolve("checkpoint.safetensors");
        assertEquals(0, run(train(out, 4, "--stop-at", "1")).code());
        Files.writeString(out.resolve("metrics.jsonl"), "{\"step\": 2, \"loss\": 1.0}\n", java.nio.file.StandardOpenOption.APPEND);
        byte[] metrics = Files.readAllBytes(out.resolve("metrics.jsonl"));
        String[] resume = {"train", "--resume", ckpt.toString(), "--out", out.toString(), "--no-progress", "--device", "cpu"};
        for (String other : List.of("came", "adamw8bit", "galore_adamw", "apollo_mini")) {
            relabel(ckpt, "optimizer", other);
            refused(run(resume), ckpt + " does not hold the state of this run", "optimizer " + other);
        }
        assertArrayEquals(metrics, Files.readAllBytes(out.resolve("metrics.jsonl")), "a refused resume leaves metrics.jsonl as it was");
        relabel(ckpt, "optimizer", "adamw");
        assertEquals(0, run(resume).code(), "the true label resumes");
    }

    @Test
    void everyArenaOfARunIncludingCheckpointLoadingBooksInTheRunsLedger() throws IOException {
        Path out = dir.resolve("out");
        assertEquals(0, run(train(out, 4, "--stop-at", "2")).code());
        List<MemoryArena> created = new ArrayList<>();
        Result r;
        try (MemoryArena.Observation o = MemoryArena.observeCreations(created::add)) {
            r = run(train(out, 4, "--resume", out.resolve("checkpoint.safetensors").toString()));
        }
        assertEquals(0, r.code(), r.err());
        List<MemoryArena> real = created.stream().filter(a -> !(a.device() instanceof Device.Meta)).toList();
        Set<String> names = real.stream().map(MemoryArena::name).collect(Collectors.toSet());
        assertTrue(names.contains("checkpoint.load") && names.contains("safetensors.write"), names.toString());
        Set<MemoryLedger> ledgers = real.stream().map(MemoryArena::ledger).collect(Collectors.toSet());
        assertEquals(1, ledgers.size(), "every arena that holds memory books in one ledger, the run's: " + real);
        assertTrue(real.stream().allMatch(MemoryArena::isClosed), "and every one is closed when the run ends");
    }

    @Test
    void helpHasNoFormatWarningsMemtableLayerwiseTakesBothAndBenchRefusesStepsBelowOne() {
        Result help = run("train", "--help");
        assertEquals(0, help.code());
        assertTrue(help.out().contains("10% of steps"), help.out());
        assertFalse(help.err().contains("Could not format"), help.err());
        for (String v : List.of("false", "true", "both", "false,true", "true,false")) {
            Result r = run("memtable", "--models", "tiny", "--optimizers", "adamw", "--layerwise", v, "--format", "csv");
            assertEquals(0, r.code(), v + ": " + r.err());
            long rows = r.out().lines().filter(l -> l.startsWith("tiny,adamw,weights,")).count();
            assertEquals(v.equals("false") || v.equals("true") ? 1 : 2, rows, v + ": " + r.out());
        }
        refused(run("memtable", "--models", "tiny", "--layerwise", "maybe"), "--layerwise expects false, true or both (or a comma list), got 'maybe'");
        refused(run("bench", "--steps", "0", "--device", "cpu"), "--steps must be >= 1 (timed steps), got 0");
        refused(run("bench", "--steps", "-1", "--device", "cpu"), "--steps must be >= 1 (timed steps), got -1");
        refused(run("bench", "--warmup-steps", "-1", "--device", "cpu"), "--warmup-steps must be >= 0");
    }
}
