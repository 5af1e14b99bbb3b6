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
