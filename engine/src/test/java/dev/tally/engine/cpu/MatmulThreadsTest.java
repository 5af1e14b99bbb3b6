package dev.tally.engine.cpu;

import dev.tally.engine.testing.ChildJvm;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The products of a llama_20m training step ({@link MatmulBenchmark#TRAINING}: the head's, the layers', the attention
 * heads', Cut Cross-Entropy's tiles and its one-row product) give the same bits on one thread and on two, in a child JVM
 * that has two workers whatever this machine's processor count, and agree with a float64 sum.
 */
class MatmulThreadsTest {
    @Test
    void trainingShapesGiveTheSameBitsOnOneAndTwoThreads() {
        ChildJvm.Result r = ChildJvm.run(List.of("-Dtally.cpu.threads=2", "-Xmx1g"), MatmulThreadsProbe.class.getName(), List.of(), 600);
        assertEquals(List.of("THREADS 2"), r.lines("THREADS "), ChildJvm.tail(r.output()));
        List<String> results = r.lines("RESULT ");
        assertEquals(MatmulBenchmark.TRAINING.size(), results.size(), ChildJvm.tail(r.output()));
        for (String line : results) {
            String[] f = line.split(" ");
            assertEquals("same", f[2], line);
            // fp32 sums of up to 32000 products: far below 1e-5 of the sum of magnitudes
            assertTrue(Double.parseDouble(f[3]) < 1e-5, line);
        }
    }
}
