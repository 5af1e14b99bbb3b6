package dev.tally.engine.io;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir Path dir;

    @Test
    void roundTripsEveryDtypeWithMetadata() throws IOException {
        try (Fixtures f = new Fixtures(Device.CPU)) {
            Map<String, Tensor> ts = new LinkedHashMap<>();
            ts.put("w", f.random(DType.F32, 3, 5));
            ts.put("h", f.random(DType.BF16, 7));
            Tensor ids = f.zeros(DType.I64, 4);
            ids.copyFrom(new long[] {1, -100, 1L << 40, 7});
            ts.put("ids", ids);
            Tensor q = f.zeros(DType.U8, 3);
            q.copyFrom(new long[] {0, 128, 255});
            ts.put("q", q);
            Path p = dir.resolve("x.safetensors");
            SafeTensors.write(p, ts, Map.of("step", "12"));
            try (SafeTensors.File file = SafeTensors.open(p)) {
                assertEquals("12", file.metadata().get("step"));
                assertArrayEquals(ts.get("w").toDoubleArray(), file.doubles("w"));
                assertArrayEquals(ts.get("h").toDoubleArray(), file.doubles("h"));
                assertArrayEquals(new long[] {1, -100, 1L << 40, 7}, file.longs("ids"));
                assertArrayEquals(new long[] {0, 128, 255}, file.longs("q"));
                Tensor back = f.zeros(DType.F32, 3, 5);
                file.readInto("w", back);
                assertArrayEquals(ts.get("w").toFloatArray(), back.toFloatArray());
                Tensor wrong = f.zeros(DType.F32, 5, 3);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> file.readInto("w", wrong));
                assertTrue(e.getMessage().contains("F32[3, 5]"), e.getMessage());
            }
            assertEquals(1, Files.list(dir).count(), "no temporary file left behind");
        }
    }

    private Path raw(long headerLen, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLen).put(h);
        Path p = Files.createTempFile(dir, "bad", ".safetensors");
        Files.write(p, b.array());
        return p;
    }

    private void rejects(Path p, String fragment) {
        IOException e = assertThrows(IOException.class, () -> SafeTensors.open(p).close());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    @Test
    void hostileFilesGetClearErrors() throws IOException {
        Path tiny = dir.resolve("tiny");
        Files.write(tiny, new byte[3]);
        rejects(tiny, "shorter than");
        rejects(raw(1L << 40, "{}", 0), "does not fit");
        rejects(raw(-1, "{}", 0), "does not fit");
        rejects(raw(9, "not json!", 0), "not a JSON object");
        String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        rejects(raw(ok.length(), ok, 4), "outside");
        String wrongSize = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        rejects(raw(wrongSize.length(), wrongSize, 8), "span");
        String overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        rejects(raw(overlap.length(), overlap, 8), "overlap");
        String dtype = "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        rejects(raw(dtype.length(), dtype, 8), "unknown dtype");
        String huge = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,4],\"data_offsets\":[0,8]}}";
        rejects(raw(huge.length(), huge, 8), "too large");
        try (SafeTensors.File good = SafeTensors.open(raw(ok.length(), ok, 8))) {
            assertEquals(2, good.doubles("a").length);
        }
    }

    @Test
    void layoutIsAsStrictAsTheReferenceReader() throws IOException {
        String a = "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}";
        String b = "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}";
        String notAtZero = "{" + a.formatted(4, 8) + "}";
        rejects(raw(notAtZero.length(), notAtZero, 8), "data starts at offset 4 (tensor 'a'), not 0");
        String gap = "{" + a.formatted(0, 4) + "," + b.formatted(8, 12) + "}";
        rejects(raw(gap.length(), gap, 12), "gap of 4 bytes between tensors 'a' and 'b'");
        String tight = "{" + a.formatted(0, 4) + "," + b.formatted(4, 8) + "}";
        rejects(raw(tight.length(), tight, 9), "1 bytes past the last tensor 'b'");
        rejects(raw(2, "{}", 3), "3 bytes past the header");
        try (SafeTensors.File ok = SafeTensors.open(raw(tight.length(), tight, 8))) {
            assertEquals(2, ok.entries().size());
        }
        // invalid UTF-8 inside a metadata string: named with its byte offset
        byte[] h = "{\"__metadata__\":{\"k\":\"v?\"}}".getBytes(StandardCharsets.UTF_8);
        int at = new String(h, StandardCharsets.UTF_8).indexOf('?');
        h[at] = (byte) 0xC3; // a lead byte followed by '"' is malformed
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h);
        Path utf = dir.resolve("utf.safetensors");
        Files.write(utf, buf.array());
        rejects(utf, "header is not valid UTF-8 (byte " + at + " of the header, file offset " + (8 + at) + ")");
        rejects(raw(4, " {} ", 0), "not a JSON object (it does not start with '{')");
    }

    @Test
    void headerLimitIsTheReferences100MB() throws IOException {
        assertEquals(100_000_000L, SafeTensors.MAX_HEADER_BYTES);
        Path big = dir.resolve("big.safetensors");
        try (var f = new java.io.RandomAccessFile(big.toFile(), "rw")) { // sparse: no 100 MB written
            f.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 100_000_001L).array());
            f.setLength(8 + 100_000_001L);
        }
        IOException e = assertThrows(SafeTensors.InvalidFileException.class, () -> SafeTensors.open(big).close());
        assertTrue(e.getMessage().contains("exceeds the 100000000-byte limit") && e.getMessage().contains("big.safetensors"), e.getMessage());
    }

    @Test
    void unreadablePathsSayWhy() throws IOException {
        IOException e = assertThrows(IOException.class, () -> SafeTensors.open(dir.resolve("none.safetensors")));
        assertTrue(e.getMessage().contains("none.safetensors: no such file"), e.getMessage());
        e = assertThrows(IOException.class, () -> SafeTensors.open(dir));
        assertTrue(e.getMessage().contains(dir + ": is a directory"), e.getMessage());
    }

    @Test
    void aSaveRemovesTemporariesOfAKilledSaveAndSyncsTheFolder() throws IOException {
        Path p = dir.resolve("ckpt.safetensors");
        Path stale = dir.resolve(".ckpt.safetensors.123456.tmp"), unrelated = dir.resolve(".other.safetensors.1.tmp");
        Files.write(stale, new byte[100]);
        Files.write(unrelated, new byte[1]);
        assertEquals(List.of(stale), SafeTensors.staleTemporaries(dir, "ckpt.safetensors"));
        try (Fixtures f = new Fixtures(Device.CPU)) {
            SafeTensors.write(p, Map.of("x", f.random(DType.F32, 2)), Map.of());
        }
        assertTrue(Files.exists(p) && !Files.exists(stale) && Files.exists(unrelated));
        assertEquals(List.of(), SafeTensors.staleTemporaries(dir, "ckpt.safetensors"));
        assertTrue(SafeTensors.syncDirectory(dir), "Linux opens and syncs a folder");
    }

    @Test
    void aWriteWithALedgerStagesThroughABookedArena() throws IOException {
        dev.tally.engine.MemoryLedger ledger = new dev.tally.engine.MemoryLedger();
        Path p = dir.resolve("booked.safetensors");
        try (Fixtures f = new Fixtures(Device.CPU)) {
            Map<String, Tensor> ts = new LinkedHashMap<>();
            ts.put("big", f.random(DType.F32, 100, 10));
            ts.put("small", f.random(DType.BF16, 3));
            SafeTensors.write(p, ts, Map.of(), ledger);
            var other = ledger.entry(Device.CPU, dev.tally.engine.MemoryCategory.OTHER);
            assertEquals(4096, other.peak(), "the largest tensor's host copy was booked (4,000 B, 256-aligned)");
            assertEquals(0, other.capacity(), "and given back");
            try (SafeTensors.File file = SafeTensors.open(p)) {
                assertArrayEquals(ts.get("big").toDoubleArray(), file.doubles("big"));
                assertArrayEquals(ts.get("small").toDoubleArray(), file.doubles("small"));
            }
        }
    }

    @Test
    void readsTheGoldenFormat() throws IOException {
        Path golden = Path.of(System.getProperty("user.dir")).resolve("../shared/golden/dynamic_map.safetensors").normalize();
        Path local = Path.of(System.getProperty("user.dir")).resolve("../../shared/golden/dynamic_map.safetensors").normalize();
        Path p = Files.exists(golden) ? golden : local;
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(p), "shared golden folder not beside this checkout");
        try (SafeTensors.File file = SafeTensors.open(p)) {
            assertEquals(256, file.doubles("signed").length);
            assertEquals("quant_map", file.metadata().get("kind"));
        }
    }
}
