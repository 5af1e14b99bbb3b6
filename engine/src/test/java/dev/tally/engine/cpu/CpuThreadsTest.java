package dev.tally.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The worker pool runs every task exactly once, nests and overlaps by running inline, and reports a task's failure. */
class CpuThreadsTest {
    @Test
    void everyTaskRunsExactlyOnceForAnyTaskAndThreadCount() {
        for (int tasks : new int[] {0, 1, 2, 3, 17, 1000}) {
            for (int threads : new int[] {1, 2, 8}) {
                for (int round = 0; round < 20; round++) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(tasks);
                    CpuThreads.parallelFor(tasks, threads, hits::incrementAndGet);
                    for (int i = 0; i < tasks; i++) assertEquals(1, hits.get(i), "task " + i + " of " + tasks + " on " + threads + " threads");
                }
            }
        }
    }

    @Test
    void aFailingTaskIsRethrownAndThePoolKeepsWorking() {
        IllegalStateException boom = new IllegalStateException("task 5 failed");
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> CpuThreads.parallelFor(64, 2, i -> {
            if (i == 5) throw boom;
        }));
        assertSame(boom, thrown);
        AtomicIntegerArray hits = new AtomicIntegerArray(100);
        CpuThreads.parallelFor(100, 2, hits::incrementAndGet);
        for (int i = 0; i < 100; i++) assertEquals(1, hits.get(i));
    }

    @Test
    void nestedAndConcurrentCallsComplete() throws InterruptedException {
        AtomicIntegerArray hits = new AtomicIntegerArray(16 * 16);
        CpuThreads.parallelFor(16, 2, i -> CpuThreads.parallelFor(16, 2, j -> hits.incrementAndGet(i * 16 + j)));
        for (int i = 0; i < 256; i++) assertEquals(1, hits.get(i), "nested task " + i);

        // two callers at once: one gets the workers, the other runs its tasks itself; both finish every task
        AtomicIntegerArray other = new AtomicIntegerArray(5000);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                for (int round = 0; round < 50; round++) {
                    int r = round;
                    CpuThreads.parallelFor(100, 2, i -> other.incrementAndGet(r * 100 + i));
                }
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        t.start();
        AtomicIntegerArray mine = new AtomicIntegerArray(5000);
        for (int round = 0; round < 50; round++) {
            int r = round;
            CpuThreads.parallelFor(100, 2, i -> mine.incrementAndGet(r * 100 + i));
        }
        t.join();
        assertEquals(null, failure.get());
        for (int i = 0; i < 5000; i++) {
            assertEquals(1, mine.get(i));
            assertEquals(1, other.get(i));
        }
    }
}
