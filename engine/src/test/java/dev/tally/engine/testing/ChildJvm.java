package dev.tally.engine.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a main class in a fresh JVM (this JVM's java binary and the test classpath, plus the flags Tally needs), so a
 * test can control what only a new process has: the JIT mode, the CPU thread count, a truly first call of a kernel.
 */
public final class ChildJvm {
    /** What the child printed (stdout and stderr together) and its exit status. */
    public record Result(int exitCode, String output) {
        public List<String> lines(String prefix) {
            return output.lines().filter(l -> l.startsWith(prefix)).toList();
        }
    }

    private ChildJvm() {}

    /** The last lines of a child's output, for failure messages (a compilation log can be long). */
    public static String tail(String text) {
        List<String> lines = text.lines().filter(l -> !l.matches("^\\s*\\d+\\s+\\d+ .*")).toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    }

    public static Path javaBinary() {
        return ProcessHandle.current().info().command().map(Path::of)
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java"));
    }

    /**
     * This test JVM's classes as one class path for a child: the class path plus the module path (tests of a module with
     * a module-info run on the module path, where the module's own classes are not on java.class.path).
     */
    public static String classPath() {
        return java.util.stream.Stream.of(System.getProperty("jdk.module.path"), System.getProperty("java.class.path"))
                .filter(p -> p != null && !p.isEmpty()).collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
    }

    /** Runs {@code mainClass args} with {@code jvmFlags}; fails the calling test when the child does not exit 0 in time. */
    public static Result run(List<String> jvmFlags, String mainClass, List<String> args, long timeoutSeconds) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBinary().toString());
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("--add-modules=jdk.incubator.vector");
        cmd.add("-Djava.awt.headless=true");
        cmd.addAll(jvmFlags);
        cmd.add("-cp");
        cmd.add(classPath());
        cmd.add(mainClass);
        cmd.addAll(args);
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            pb.environment().remove("JAVA_TOOL_OPTIONS"); // the flags given here are the only ones
            Process p = pb.start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("child JVM " + cmd + " did not finish in " + timeoutSeconds + " s");
            }
            String text = new String(out, StandardCharsets.UTF_8);
            if (p.exitValue() != 0) throw new AssertionError("child JVM " + jvmFlags + " " + mainClass + " " + args + " exited " + p.exitValue() + ":\n" + tail(text));
            return new Result(p.exitValue(), text);
        } catch (IOException e) {
            throw new AssertionError("cannot start child JVM " + cmd, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted waiting for child JVM", e);
        }
    }
}
