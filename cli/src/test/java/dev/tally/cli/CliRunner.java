package dev.tally.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Runs {@code tally} in-process and captures what it prints (tests of the research commands). */
final class CliRunner {
    private CliRunner() {}

    record Result(int code, String out, String err) {
        String line(String prefix) {
            return out.lines().filter(l -> l.startsWith(prefix)).reduce((a, b) -> b)
                    .orElseThrow(() -> new AssertionError("no line starting '" + prefix + "' in:\n" + out + err));
        }
    }

    static synchronized Result run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    /** A tiny training run: batch 2 × 32, adamw, evaluation on 2 held-out batches at the end only. */
    static String[] train(Path out, int steps, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--device", "cpu", "--batch", "2", "--seq", "32", "--steps",
                Integer.toString(steps), "--eval-every", "1000", "--eval-batches", "2", "--no-progress", "--out", out.toString(),
                "--optimizer", "adamw", "--lr", "0.003"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }
}
