package dev.tally.engine.io;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Fixtures;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Random mutations of a valid file (bit flips, truncation, byte insertion, header edits): every outcome is either a
 * clean load — every tensor readable — or an {@link SafeTensors.InvalidFileException}, never another exception type.
 */
class SafeTensorsFuzzTest {
    private static Path dir;
    private static byte[] valid;
    private static int headerEnd;

    @BeforeContainer
    static void writeValidFile() throws IOException {
        dir = Files.createTempDirectory("safetensors-fuzz");
        try (Fixtures f = new Fixtures(Device.CPU)) {
            Map<String, Tensor> ts = new LinkedHashMap<>();
            ts.put("w", f.random(DType.F32, 3, 5));
            ts.put("h", f.random(DType.BF16, 7));
            ts.put("ids", f.zeros(DType.I64, 4));
            ts.put("q", f.zeros(DType.U8, 3));
            ts.put("empty", f.zeros(DType.F32, 0, 4));
            Path p = dir.resolve("valid.safetensors");
            SafeTensors.write(p, ts, Map.of("step", "12", "format", "fuzz"));
            valid = Files.readAllBytes(p);
        }
        headerEnd = 8 + (int) ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    }

    @AfterContainer
    static void removeFiles() throws IOException {
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) Files.delete(p);
        }
        Files.delete(dir);
    }

    enum Kind { FLIP_BITS, TRUNCATE, INSERT_BYTES, HEADER_BYTE, HEADER_NUMBER, HEADER_DELETE }

    /** One mutation: what, where (a fraction of the relevant span), and a value that selects bytes or numbers. */
    record Mutation(Kind kind, double where, int value, int count) {}

    @Provide
    Arbitrary<Mutation> mutations() {
        return Combinators.combine(Arbitraries.of(Kind.class), Arbitraries.doubles().between(0, 1),
                Arbitraries.integers().between(0, Integer.MAX_VALUE), Arbitraries.integers().between(1, 8)).as(Mutation::new);
    }

    private static final byte[] INTERESTING = {'{', '}', '[', ']', '"', ',', ':', '-', '0', '9', 'e', '.', ' ', '\\', 0,
            (byte) 0x80, (byte) 0xC3, (byte) 0xFF, (byte) 0xED};
    private static final String[] NUMBERS = {"0", "1", "-1", "7", "8", "2147483647", "2147483648", "4294967296",
            "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e3", "1.5", "-0", "00", "99999999999999999999999"};

    static byte[] mutate(byte[] in, Mutation m) {
        int pos = Math.min(in.length - 1, (int) (m.where() * in.length));
        return switch (m.kind()) {
            case FLIP_BITS -> {
                byte[] out = in.clone();
                long x = m.value();
                for (int k = 0; k < m.count(); k++) {
                    x = x * 6364136223846793005L + 1442695040888963407L;
                    int bit = (int) Long.remainderUnsigned(x >>> 7, (long) out.length * 8);
                    out[bit / 8] ^= (byte) (1 << (bit % 8));
                }
                yield out;
            }
            case TRUNCATE -> Arrays.copyOf(in, Math.min(pos, in.length - 1));
            case INSERT_BYTES -> {
                byte[] out = new byte[in.length + m.count()];
                System.arraycopy(in, 0, out, 0, pos);
                for (int k = 0; k < m.count(); k++) out[pos + k] = INTERESTING[(m.value() + k) % INTERESTING.length];
                System.arraycopy(in, pos, out, pos + m.count(), in.length - pos);
                yield out;
            }
            case HEADER_BYTE -> {
                byte[] out = in.clone();
                out[8 + Math.min(headerEnd - 9, (int) (m.where() * (headerEnd - 8)))] = INTERESTING[m.value() % INTERESTING.length];
                yield out;
            }
            case HEADER_NUMBER -> {
                String header = new String(in, 8, headerEnd - 8, StandardCharsets.UTF_8);
                List<int[]> runs = new ArrayList<>();
                Matcher d = Pattern.compile("\\d+").matcher(header);
                while (d.find()) runs.add(new int[] {d.start(), d.end()});
                int[] run = runs.get(Math.min(runs.size() - 1, (int) (m.where() * runs.size())));
                yield withHeader(in, header.substring(0, run[0]) + NUMBERS[m.value() % NUMBERS.length] + header.substring(run[1]));
            }
            case HEADER_DELETE -> {
                String header = new String(in, 8, headerEnd - 8, StandardCharsets.UTF_8);
                int at = (int) (m.where() * header.length());
                yield withHeader(in, header.substring(0, at) + header.substring(Math.min(header.length(), at + m.count())));
            }
        };
    }

    /** The file with a new header and the header length updated, so edits reach the parser and the layout checks. */
    private static byte[] withHeader(byte[] in, String header) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + in.length - headerEnd).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(in, headerEnd, in.length - headerEnd);
        return b.array();
    }

    @Property(tries = 3000)
    void everyMutationLoadsCleanlyOrIsRefusedByName(@ForAll("mutations") Mutation m) throws IOException {
        byte[] bytes = mutate(valid, m);
        Path p = dir.resolve("mutated.safetensors");
        Files.write(p, bytes);
        try (SafeTensors.File f = SafeTensors.open(p)) {
            for (String name : f.entries().keySet()) f.doubles(name); // a clean load reads every tensor
        } catch (SafeTensors.InvalidFileException expected) {
            if (!expected.getMessage().contains(p.toString())) fail("error does not name the file: " + expected.getMessage());
        } catch (Throwable other) {
            fail(m + " gave " + other, other);
        }
    }

    @Property(tries = 1)
    void theUnmutatedFileLoads() throws IOException {
        Path p = dir.resolve("valid.safetensors");
        try (SafeTensors.File f = SafeTensors.open(p)) {
            assertEquals(5, f.entries().size());
            assertEquals(15, f.doubles("w").length);
        }
    }
}
