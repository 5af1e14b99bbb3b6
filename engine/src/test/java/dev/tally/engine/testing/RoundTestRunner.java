package dev.tally.engine.testing;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;
import static org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder.request;

/**
 * Runs every test class under a package through the JUnit platform launcher, for the GPU round's remote half (a jlink
 * runtime, no Maven, no JUnit console jar): one line per test (PASS, FAIL, SKIP with its reason), each failure's stack
 * trace, and a summary, to stdout and the report file. Exit status 0 only when tests ran and none failed.
 *
 * <pre>{@code java ... -cp <jars> dev.tally.engine.testing.RoundTestRunner dev.tally.engine results/tests.txt}</pre>
 */
public final class RoundTestRunner {
    private RoundTestRunner() {}

    public static void main(String[] args) throws IOException {
        String pkg = args.length > 0 ? args[0] : "dev.tally.engine";
        Path report = Path.of(args.length > 1 ? args[1] : "tests.txt");
        List<String> lines = new ArrayList<>(), failures = new ArrayList<>();
        TestExecutionListener lines1 = new TestExecutionListener() {
            @Override public void executionSkipped(TestIdentifier id, String reason) {
                if (id.isTest() || id.isContainer()) line("SKIP " + name(id) + " (" + reason + ")");
            }

            @Override public void executionFinished(TestIdentifier id, TestExecutionResult result) {
                boolean failed = result.getStatus() == TestExecutionResult.Status.FAILED;
                if (!id.isTest() && !failed) return;
                String status = switch (result.getStatus()) {
                    case SUCCESSFUL -> "PASS";
                    case ABORTED -> "SKIP";
                    case FAILED -> "FAIL";
                };
                String why = result.getThrowable().map(t -> " (" + t + ")").orElse("");
                line(status + " " + name(id) + (result.getStatus() == TestExecutionResult.Status.SUCCESSFUL ? "" : why));
                if (failed) {
                    StringWriter trace = new StringWriter();
                    result.getThrowable().ifPresent(t -> t.printStackTrace(new PrintWriter(trace)));
                    failures.add("FAIL " + name(id) + "\n" + trace);
                }
            }

            private synchronized void line(String s) {
                lines.add(s);
                System.out.println(s);
            }
        };
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        Launcher launcher = LauncherFactory.create();
        launcher.execute(request().selectors(selectPackage(pkg)).build(), lines1, summary);
        TestExecutionSummary s = summary.getSummary();
        String totals = String.format("tests found %d, succeeded %d, failed %d, skipped %d (aborted %d); containers failed %d",
                s.getTestsFoundCount(), s.getTestsSucceededCount(), s.getTestsFailedCount(),
                s.getTestsSkippedCount() + s.getTestsAbortedCount(), s.getTestsAbortedCount(), s.getContainersFailedCount());
        System.out.println(totals);
        List<String> all = new ArrayList<>(lines);
        all.add("");
        all.addAll(failures);
        all.add(totals);
        Files.write(report, all);
        boolean ok = s.getTestsFoundCount() > 0 && s.getTotalFailureCount() == 0;
        System.exit(ok ? 0 : 1);
    }

    private static String name(TestIdentifier id) {
        return id.getLegacyReportingName() + " [" + id.getUniqueId().replaceAll(".*\\[class:([^\\]]*)\\].*", "$1") + "]";
    }
}
