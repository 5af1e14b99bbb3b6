package dev.tally.nativekernels;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The fatbin resource, where this build had nvcc: present, a fatbin, and holding every entry point of the sources. */
class KernelPackagingTest {

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = KernelResources.class.getResourceAsStream(name)) {
            return in == null ? null : in.readAllBytes();
        }
    }

    @Test void fatbinHoldsEveryEntryPointOfTheSources() throws IOException {
        byte[] fatbin = resource(KernelResources.FATBIN);
        assumeTrue(fatbin != null, "skipped: this build had no nvcc, so the jar carries no kernels");
        assertEquals(KernelResources.FATBIN_MAGIC, ByteBuffer.wrap(fatbin).order(ByteOrder.LITTLE_ENDIAN).getInt(0));

        List<String> listed = new String(resource(KernelResources.KERNEL_LIST), StandardCharsets.UTF_8).lines().toList();
        // the sources are the truth: every extern "C" kernel in native/src/main/cuda must be listed and compiled in
        Pattern entry = Pattern.compile("extern \"C\" __global__ void (\\w+)");
        int found = 0;
        try (var files = Files.list(Path.of("src/main/cuda"))) {
            for (Path p : files.filter(f -> f.toString().endsWith(".cu")).toList()) {
                Matcher m = entry.matcher(Files.readString(p));
                while (m.find()) {
                    found++;
                    String name = m.group(1);
                    assertTrue(listed.contains(name), name + " missing from " + KernelResources.KERNEL_LIST);
                    byte[] needle = (".nv.constant0." + name).getBytes(StandardCharsets.US_ASCII);
                    assertTrue(indexOf(fatbin, needle) >= 0, name + " has no SASS in the fatbin");
                }
            }
        }
        assertEquals(found, listed.size(), "kernel list and sources disagree");
        assertTrue(found >= 20, "expected the full kernel set, found " + found);

        Properties info = new Properties();
        info.load(new java.io.ByteArrayInputStream(resource(KernelResources.BUILD_INFO)));
        assertEquals("sm_80,sm_90,compute_90", info.getProperty("archs"));
    }

    /** Runs check-stack-frames.sh on {@code log}; returns its exit code and output. */
    private static String[] checkFrames(String log) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("bash", "check-stack-frames.sh").redirectErrorStream(true).start();
        try (var in = p.getOutputStream()) { in.write(log.getBytes(StandardCharsets.UTF_8)); }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new String[]{String.valueOf(p.waitFor()), out};
    }

    private static String ptxasEntry(String name, int frame, int spill) {
        return "ptxas info    : Compiling entry function '" + name + "' for 'sm_90'\n"
                + "ptxas info    : Function properties for " + name + "\n"
                + "    " + frame + " bytes stack frame, " + spill + " bytes spill stores, " + spill + " bytes spill loads\n"
                + "ptxas info    : Used 30 registers, used 0 barriers, 480 bytes cmem[0]\n";
    }

    @Test void stackFrameCheckFailsOnAFrameOrSpillAndNamesTheKernel() throws Exception {
        String[] clean = checkFrames(ptxasEntry("tally_fill", 0, 0) + ptxasEntry("tally_copy", 0, 0));
        assertEquals("0", clean[0], clean[1]);
        assertTrue(clean[1].contains("2 functions, no stack frame"), clean[1]);
        String[] frame = checkFrames(ptxasEntry("tally_fill", 0, 0) + ptxasEntry("tally_where", 480, 0));
        assertEquals("1", frame[0], frame[1]);
        assertTrue(frame[1].contains("tally_where (sm_90)") && !frame[1].contains("tally_fill"), frame[1]);
        String[] spill = checkFrames(ptxasEntry("tally_binary", 0, 8));
        assertEquals("1", spill[0], spill[1]);
        assertEquals("2", checkFrames("nothing from ptxas here\n")[0], "an empty log must not pass as clean");
    }

    /** The log of this build's own nvcc run (build-kernels.sh keeps it in target/), where nvcc was present. */
    @Test void thisBuildsKernelsHaveNoStackFrame() throws Exception {
        Path log = Path.of("target/ptxas-v.log");
        assumeTrue(Files.exists(log), "skipped: this build had no nvcc (no target/ptxas-v.log)");
        String[] r = checkFrames(Files.readString(log));
        assertEquals("0", r[0], r[1]);
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }
}
