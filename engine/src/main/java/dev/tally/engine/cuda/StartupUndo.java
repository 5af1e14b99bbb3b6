package dev.tally.engine.cuda;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * What a constructor has created so far (a stream, a kernel library, library handles, device buffers), each with the
 * call that releases it. Should the constructor fail part-way, {@link #unwind} releases them newest first, so a failed
 * start leaks nothing on the GPU; a release that fails too is attached to the original failure as suppressed.
 */
final class StartupUndo {
    private record Step(String what, Runnable release) {}

    private final Deque<Step> steps = new ArrayDeque<>();

    /** Records that {@code what} now exists and how to release it. */
    void created(String what, Runnable release) {
        steps.push(new Step(what, release));
    }

    /** The names of what is held, newest first (for tests and messages). */
    java.util.List<String> held() {
        return steps.stream().map(Step::what).toList();
    }

    /** The constructor finished: nothing is released. */
    void commit() {
        steps.clear();
    }

    /** Releases everything created so far, newest first; returns {@code failure} with any release failures suppressed. */
    <T extends Throwable> T unwind(T failure) {
        while (!steps.isEmpty()) {
            Step s = steps.pop();
            try {
                s.release().run();
            } catch (RuntimeException | LinkageError e) {
                failure.addSuppressed(new IllegalStateException("while releasing " + s.what() + " after a failed start", e));
            }
        }
        return failure;
    }
}
