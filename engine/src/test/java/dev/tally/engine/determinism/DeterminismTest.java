package dev.tally.engine.determinism;

import dev.tally.engine.testing.ChildJvm;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every CPU fast-path op gives the same bits whatever the JIT is doing: its first call in a fresh JVM (cold) equals a
 * call after a thousand warm-up calls (C2-compiled: the child's compilation log shows the kernels reached tier 4), and
 * both equal C1 only ({@code -XX:TieredStopAtLevel=1}, where the Vector API runs its Java fallback), on 2 and 1 threads.
 */
class DeterminismTest {
    private static final String PROBE = DeterminismProbe.class.getName();

    @Test
    void fastPathsGiveTheSameBitsColdWarmC1AndC2OnOneAndTwoThreads() throws java.io.IOException {
        // lower compile thresholds: C2 compiles the kernels within the warm-up (compilation stays in the background;
        // -Xbatch would make it synchronous at many times the cost). The compilation log goes to a file of its own: on
        // stdout the compiler threads' lines interleave with the probe's digests and can break them.
        // On a loaded machine the background compiler can fall behind a fixed warm-up: a run in which some kernel did
        // not reach C2 is repeated once with four times the warm-up before the test gives up on it.
        List<String> kernels = List.of("dev.tally.engine.cpu.ContiguousF32Kernels::softmaxRow", "dev.tally.engine.cpu.Gemm::kernel",
                "dev.tally.engine.cpu.FlashAttention::scoreTile", "dev.tally.engine.cpu.FlashAttention::rowTile");
        ChildJvm.Result c2 = null;
        String compiled = "";
        List<String> cold = kernels;
        for (int warmUp : new int[] {1000, 4000}) {
            java.nio.file.Path compileLog = java.nio.file.Files.createTempFile("tally-c2-", ".log");
            c2 = ChildJvm.run(List.of("-XX:CompileThresholdScaling=0.2", "-XX:+UnlockDiagnosticVMOptions", "-XX:+PrintCompilation",
                            "-XX:+LogVMOutput", "-XX:-DisplayVMOutput", "-XX:LogFile=" + compileLog, "-Dtally.cpu.threads=2"),
                    PROBE, List.of(Integer.toString(warmUp), "4"), 600);
            compiled = java.nio.file.Files.readString(compileLog);
            java.nio.file.Files.deleteIfExists(compileLog);
            String log = compiled;
            cold = kernels.stream().filter(k -> log.lines().noneMatch(l -> l.contains(k) && l.matches("^\\s*\\d+\\s+\\d+\\s+[%sbn! ]*4\\s+.*"))).toList();
            if (cold.isEmpty()) break;
        }
        assertTrue(cold.isEmpty(), cold + " not compiled by C2 during the warm-up:\n" + ChildJvm.tail(compiled));
        // C1 does not intrinsify the Vector API: this runs its per-lane Java fallback, the interpreter's arithmetic
        ChildJvm.Result c1 = ChildJvm.run(List.of("-XX:TieredStopAtLevel=1", "-Dtally.cpu.threads=1"), PROBE, List.of("100", "1"), 600);

        Map<String, String> reference = digests(c2);
        assertTrue(reference.size() >= 30, "the probe printed too few digests:\n" + ChildJvm.tail(c2.output()));
        assertEquals(reference, digests(c1), "C2 on 2 threads vs C1 on 1 thread (first calls)");
    }

    /** name → the first call's digest, after checking that every later call (warmer code) gave the same. */
    private static Map<String, String> digests(ChildJvm.Result r) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : r.lines("DIGEST ")) {
            String[] f = line.split(" ");
            for (int i = 3; i < f.length; i++) assertEquals(f[2], f[i], f[1] + ": call " + (i - 1) + " differs from the first (cold) call");
            assertTrue(f.length >= 4, line);
            m.put(f[1], f[2]);
        }
        return m;
    }
}
