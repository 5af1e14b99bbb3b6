package dev.tally.engine.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * The CPU backend's worker threads: a fixed set of daemon threads sized to the available processors (or the
 * {@code tally.cpu.threads} system property), created once. Ops split work into index ranges and wait for them.
 *
 * <p>A training step is a stream of parallel ops of a fraction of a millisecond each. Handing each one to parked threads
 * (an executor's queue) cost a wake-up per op, and on a virtual machine that wake-up is often longer than the op's
 * half: the caller then ran every task itself, and the step's small GEMMs gained nothing from the second core. The
 * workers here poll for {@link #SPIN_NANOS} after their last task before parking, so back-to-back ops find them
 * awake; a job is published with one volatile write and the caller waits on a counter. Polling yields the core
 * ({@code Thread.yield}, which returns at once on an idle machine): on a busy one a spinning caller would otherwise hold
 * the core its own worker needs to finish.
 */
final class CpuThreads {
    private static final int THREADS = Math.max(1, Integer.getInteger("tally.cpu.threads", Runtime.getRuntime().availableProcessors()));
    /**
     * How long an idle worker polls for the next job before parking, and the caller for its workers' last tasks: longer
     * than the gap between a step's ops. {@code -Dtally.cpu.spinMicros=0} parks at once (for A/B timing).
     */
    static final long SPIN_NANOS = Math.max(0, Long.getLong("tally.cpu.spinMicros", 200)) * 1000;
    private static final ThreadLocal<Boolean> IN_POOL = ThreadLocal.withInitial(() -> false);
    /** One job at a time: a second caller meanwhile (another thread's op) runs its tasks itself. */
    private static final AtomicBoolean BUSY = new AtomicBoolean();
    private static final Thread[] WORKERS = new Thread[THREADS - 1];
    private static volatile Job current;

    static {
        for (int w = 0; w < WORKERS.length; w++) {
            Thread t = new Thread(CpuThreads::work, "tally-cpu-" + (w + 1));
            t.setDaemon(true);
            WORKERS[w] = t;
            t.start();
        }
    }

    private CpuThreads() {}

    static int count() { return THREADS; }

    /**
     * Runs {@code body.accept(i)} for every i in [0, tasks) on up to {@code threads} threads (the caller included) and
     * waits. Tasks are handed out dynamically. Runs inline when called from a pool thread (no nested waiting) or while
     * another caller's job holds the workers.
     */
    static void parallelFor(int tasks, int threads, IntConsumer body) {
        int workers = Math.min(Math.min(threads, THREADS), tasks);
        if (workers <= 1 || IN_POOL.get() || !BUSY.compareAndSet(false, true)) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        try {
            Job job = new Job(tasks, workers - 1, body, Thread.currentThread());
            current = job;
            for (Thread w : WORKERS) LockSupport.unpark(w);
            job.drain();
            job.awaitDone();
            job.rethrow();
        } finally {
            current = null;
            BUSY.set(false);
        }
    }

    /** A worker: runs its share of every new job, polling for the next one for a while before it parks. */
    private static void work() {
        IN_POOL.set(true);
        Job seen = null;
        while (true) {
            long spinEnd = System.nanoTime() + SPIN_NANOS;
            Job job;
            while ((job = current) == null || job == seen) {
                if (System.nanoTime() < spinEnd) Thread.yield();
                else LockSupport.park(CpuThreads.class);
            }
            seen = job;
            if (job.join()) job.drain();
        }
    }

    /** One parallelFor: tasks handed out by a counter, completion counted, the first failure kept. */
    private static final class Job {
        private final int tasks;
        private final IntConsumer body;
        private final Thread caller;
        private final AtomicInteger next = new AtomicInteger();
        private final AtomicInteger done = new AtomicInteger();
        private final AtomicInteger helpers;
        private volatile Throwable failure;

        Job(int tasks, int helpers, IntConsumer body, Thread caller) {
            this.tasks = tasks;
            this.helpers = new AtomicInteger(helpers);
            this.body = body;
            this.caller = caller;
        }

        /** Whether a worker may help: at most {@code threads - 1} of them join a job. */
        boolean join() { return helpers.getAndDecrement() > 0; }

        void drain() {
            for (int i = next.getAndIncrement(); i < tasks; i = next.getAndIncrement()) {
                int finished = 1;
                try {
                    body.accept(i);
                } catch (Throwable e) { // anything: a worker that died here would leave the caller waiting for ever
                    if (failure == null) failure = e;
                    // stop handing out work; the tasks nobody took count as finished
                    finished += Math.max(0, tasks - next.getAndSet(tasks));
                }
                if (done.addAndGet(finished) == tasks) LockSupport.unpark(caller);
            }
        }

        void awaitDone() {
            long spinEnd = System.nanoTime() + SPIN_NANOS;
            while (done.get() < tasks) {
                if (System.nanoTime() < spinEnd) Thread.yield();
                else LockSupport.park(this);
            }
        }

        void rethrow() {
            Throwable f = failure;
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error err) throw err;
            if (f != null) throw new IllegalStateException("cpu worker failed", f);
        }
    }
}
