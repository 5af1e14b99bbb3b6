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

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }
}
