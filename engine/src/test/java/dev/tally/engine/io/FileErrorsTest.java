package dev.tally.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class FileErrorsTest {
    @TempDir Path dir;

    @Test
    void jdkFailuresBecomeFileAndReason() throws IOException {
        Path missing = dir.resolve("missing.txt");
        IOException e = assertThrows(IOException.class, () -> Files.readString(missing));
        assertEquals(missing + ": no such file or directory", FileErrors.describe(e));
        Path file = Files.writeString(dir.resolve("f"), "x");
        e = assertThrows(IOException.class, () -> Files.createDirectories(file.resolve("sub")));
        assertEquals(file.resolve("sub") + ": Not a directory", FileErrors.describe(e)); // a file where a folder should be
        Path binary = Files.write(dir.resolve("b"), new byte[] {(byte) 0xff});
        e = assertThrows(IOException.class, () -> Files.readString(binary, StandardCharsets.UTF_8));
        assertEquals("not UTF-8 text", FileErrors.reason(e));
    }

    @Test
    void requireReadableFileSaysWhy() throws IOException {
        IOException e = assertThrows(IOException.class, () -> FileErrors.requireReadableFile(dir.resolve("x"), "checkpoint"));
        assertEquals("checkpoint " + dir.resolve("x") + ": no such file", e.getMessage());
        e = assertThrows(IOException.class, () -> FileErrors.requireReadableFile(dir, "checkpoint"));
        assertEquals("checkpoint " + dir + ": is a directory, not a file", e.getMessage());
    }
}
