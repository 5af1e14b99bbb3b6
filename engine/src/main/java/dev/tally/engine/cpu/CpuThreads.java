package dev.tally.engine.cpu;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * The CPU backend's worker threads: one fixed pool of daemon threads sized to the available processors (or the
 * {@code tally.cpu.threads} system property), created once. Ops split work into index ranges and wait for them.
 */
final class CpuThreads {
    private static final int THREADS = Math.max(1, Integer.getInteger("tally.cpu.threads", Runtime.getRuntime().availableProcessors()));
    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static final ThreadLocal<Boolean> IN_POOL = ThreadLocal.withInitial(() -> false);
    private static final ExecutorService POOL = Executors.newFixedThreadPool(THREADS, r -> {
        Thread t = new Thread(() -> {
            IN_POOL.set(true);
            r.run();
        }, "tally-cpu-" + COUNTER.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    private CpuThreads() {}

    static int count() { return THREADS; }

    /**
     * Runs {@code body.accept(i)} for every i in [0, tasks) on up to {@code threads} threads (the caller included) and
     * waits. Tasks are handed out dynamically. Runs inline when called from a pool thread (no nested waiting).
     */
    static void parallelFor(int tasks, int threads, IntConsumer body) {
        int workers = Math.min(Math.min(threads, THREADS), tasks);
        if (workers <= 1 || IN_POOL.get()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        Runnable drain = () -> {
            for (int i = next.getAndIncrement(); i < tasks; i = next.getAndIncrement()) body.accept(i);
        };
        List<Future<?>> futures = new ArrayList<>(workers - 1);
        for (int w = 0; w < workers - 1; w++) futures.add(POOL.submit(drain));
        Throwable failure = null;
        try {
            drain.run();
        } catch (RuntimeException | Error e) {
            failure = e;
            next.set(tasks); // stop handing out work
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failure == null) failure = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failure == null) failure = e;
            }
        }
        if (failure instanceof RuntimeException re) throw re;
        if (failure instanceof Error err) throw err;
        if (failure != null) throw new IllegalStateException("cpu worker failed", failure);
    }
}
