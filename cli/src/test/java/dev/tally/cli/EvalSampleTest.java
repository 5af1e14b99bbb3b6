package dev.tally.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static dev.tally.cli.CliRunner.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code tally eval} and {@code tally sample} on the checkpoint {@code tally train} writes. */
class EvalSampleTest {
    @TempDir static Path dir;
    static Path ckpt;
    static String trainedFinal;

    @BeforeAll
    static void trainTiny() {
        CliRunner.Result r = run(CliRunner.train(dir.resolve("run"), 4));
        assertEquals(0, r.code(), r.err());
        trainedFinal = r.line("final held-out loss");
        ckpt = dir.resolve("run").resolve("checkpoint.safetensors");
    }

    @Test
    void evalReproducesTheRunsFinalHeldOutLoss() {
        CliRunner.Result r = run("eval", "--checkpoint", ckpt.toString(), "--eval-batches", "2", "--device", "cpu");
        assertEquals(0, r.code(), r.err());
        // train prints "final held-out loss 5.1234, perplexity 168.01"; eval "held-out loss 5.1234  perplexity 168.01"
        String[] t = trainedFinal.replace(",", "").split("\\s+"), e = r.line("held-out loss").split("\\s+");
        assertEquals(t[3], e[2], r.out());
        assertEquals(t[5], e[4], r.out());
        assertEquals(Math.exp(Double.parseDouble(e[2])), Double.parseDouble(e[4]), 0.01 * Double.parseDouble(e[4]));
    }

    @Test
    void greedySamplingIsDeterministicAndSeededSamplingReproducible() {
        String[] greedy = {"sample", "--checkpoint", ckpt.toString(), "--prompt", "LOVE, n.", "--tokens", "12", "--temperature", "0", "--device", "cpu"};
        CliRunner.Result a = run(greedy), b = run(greedy);
        assertEquals(0, a.code(), a.err());
        assertTrue(a.out().startsWith("LOVE, n."), a.out());
        assertTrue(a.out().strip().getBytes(java.nio.charset.StandardCharsets.UTF_8).length >= "LOVE, n.".length(), a.out());
        assertEquals(a.out(), b.out());
        // greedy ignores the seed
        assertEquals(a.out(), run(withSeed(greedy, "9")).out());
        String[] sampled = {"sample", "--checkpoint", ckpt.toString(), "--prompt", "A", "--tokens", "40", "--temperature", "1.5",
                "--top-k", "0", "--device", "cpu"};
        CliRunner.Result s1 = run(withSeed(sampled, "1")), s2 = run(withSeed(sampled, "1")), s3 = run(withSeed(sampled, "2"));
        assertEquals(0, s1.code(), s1.err());
        assertEquals(s1.out(), s2.out());
        assertNotEquals(s1.out(), s3.out(), "40 tokens at temperature 1.5 from a barely trained model differ between seeds");
    }

    @Test
    void samplePicksTheArgmaxAtTemperatureZeroAndStaysInTheTopK() {
        SampleCommand c = new SampleCommand();
        c.temperature = 0;
        double[] z = {0.1, 3.0, -1.0, 3.0, 2.9};
        java.util.SplittableRandom r = new java.util.SplittableRandom(0);
        assertEquals(1, c.pick(z, 5, r), "ties go to the lowest id");
        c.temperature = 1;
        c.topK = 2;
        for (int i = 0; i < 200; i++) {
            int k = c.pick(z, 5, r);
            assertTrue(k == 1 || k == 3, "top-2 only, got " + k);
        }
        c.topK = 0; // all ids: over many draws the least likely one (id 2) appears too
        boolean sawLeast = false;
        for (int i = 0; i < 2000 && !sawLeast; i++) sawLeast = c.pick(z, 5, r) == 2;
        assertTrue(sawLeast);
    }

    @Test
    void badInputsAreNamed() {
        CliRunner.Result r = run("sample", "--checkpoint", ckpt.toString(), "--temperature", "-1");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--temperature must be >= 0"), r.err());
        r = run("eval", "--checkpoint", dir.resolve("nope.safetensors").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("nope.safetensors"), r.err());
    }

    private static String[] withSeed(String[] args, String seed) {
        String[] a = java.util.Arrays.copyOf(args, args.length + 2);
        a[args.length] = "--seed";
        a[args.length + 1] = seed;
        return a;
    }
}
