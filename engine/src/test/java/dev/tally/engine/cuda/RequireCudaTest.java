package dev.tally.engine.cuda;

import dev.tally.engine.Backends;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder.request;

/**
 * On a machine without a usable GPU, the CUDA tests skip by default and fail with the backend's start failure under
 * {@code -Dtally.require.cuda=true}: runs {@link CudaVsCpuTest} and {@link CudaLedgerTest} through the JUnit platform
 * launcher both ways. (On a GPU machine they pass both ways, so there is nothing to show and this test skips.)
 */
class RequireCudaTest {

    private static TestExecutionSummary run(boolean requireCuda) {
        String before = System.getProperty(TestDevices.REQUIRE_CUDA);
        System.setProperty(TestDevices.REQUIRE_CUDA, Boolean.toString(requireCuda));
        try {
            LauncherDiscoveryRequest req = request().selectors(selectClass(CudaVsCpuTest.class), selectClass(CudaLedgerTest.class))
                    .build();
            Launcher launcher = LauncherFactory.create();
            SummaryGeneratingListener listener = new SummaryGeneratingListener();
            launcher.execute(req, listener);
            return listener.getSummary();
        } finally {
            if (before == null) System.clearProperty(TestDevices.REQUIRE_CUDA);
            else System.setProperty(TestDevices.REQUIRE_CUDA, before);
        }
    }

    @Test void withoutAGpuTheCudaTestsSkipByDefaultAndFailWithTheCauseWhenRequired() {
        assumeFalse(Backends.cudaAvailable(), "skipped: this machine has a usable GPU");
        RuntimeException problem = Backends.cudaProblem().orElseThrow();

        TestExecutionSummary lenient = run(false);
        assertTrue(lenient.getTestsStartedCount() >= 10, "CUDA test cases found: " + lenient.getTestsStartedCount());
        assertEquals(0, lenient.getTotalFailureCount());
        assertEquals(lenient.getTestsStartedCount(), lenient.getTestsAbortedCount(), "every case skipped");

        TestExecutionSummary strict = run(true);
        assertEquals(strict.getTestsStartedCount(), strict.getTestsFailedCount(), "every case failed");
        assertEquals(0, strict.getTestsAbortedCount());
        for (TestExecutionSummary.Failure f : strict.getFailures()) {
            Throwable e = f.getException();
            assertTrue(e.getMessage().contains("-Dtally.require.cuda=true") && e.getMessage().contains(problem.getMessage()),
                    f.getTestIdentifier().getDisplayName() + ": " + e.getMessage());
            assertSame(problem, e.getCause(), "the start failure travels as the cause");
        }
    }
}
