package dev.tally.engine.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * CudaBackend's constructor records each resource it creates in a StartupUndo; a failure part-way releases them newest
 * first. The constructor itself needs a GPU, so its steps are replayed here with an injected failing step.
 */
class StartupUndoTest {

    /** The constructor's sequence, with the step named {@code failAt} throwing as a CUDA call would. */
    private static List<String> startFailingAt(String failAt, List<String> released) {
        StartupUndo undo = new StartupUndo();
        String[] steps = {"stream", "kernel library", "cublas handle", "cublas workspace", "cusolver handle", "error word",
                "reduction scratch"};
        try {
            for (String step : steps) {
                if (step.equals(failAt)) throw new CudaException("create " + step, "cudaErrorMemoryAllocation", "out of memory");
                undo.created(step, () -> released.add(step));
            }
            undo.commit();
        } catch (RuntimeException e) {
            undo.unwind(e);
            assertEquals("create " + failAt + " failed: cudaErrorMemoryAllocation (out of memory)", e.getMessage());
        }
        return undo.held();
    }

    @Test void aFailedStartReleasesWhatItCreatedNewestFirst() {
        List<String> released = new ArrayList<>();
        assertTrue(startFailingAt("cusolver handle", released).isEmpty(), "nothing left held");
        assertEquals(List.of("cublas workspace", "cublas handle", "kernel library", "stream"), released);
    }

    @Test void aCompleteStartReleasesNothing() {
        List<String> released = new ArrayList<>();
        startFailingAt("no such step", released);
        assertEquals(List.of(), released);
    }

    @Test void aFailingReleaseIsSuppressedAndTheRestStillRun() {
        StartupUndo undo = new StartupUndo();
        List<String> released = new ArrayList<>();
        undo.created("stream", () -> released.add("stream"));
        undo.created("cublas handle", () -> { throw new IllegalStateException("CUBLAS_STATUS_NOT_INITIALIZED"); });
        RuntimeException failure = undo.unwind(new IllegalStateException("cusolverDnCreate failed"));
        assertEquals(List.of("stream"), released);
        assertEquals(1, failure.getSuppressed().length);
        assertTrue(failure.getSuppressed()[0].getMessage().contains("cublas handle"));
    }
}
