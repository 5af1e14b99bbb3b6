package dev.tally.cli;

import dev.tally.cli.CliRunner.Result;
import dev.tally.engine.io.Json;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code tally bench --matmul-only --matmul-shapes …}: the GEMM benchmark on the given shapes, and a bad shape refused. */
class BenchMatmulTest {
    @Test
    void measuresTheGivenShapesOnOneAndAllThreads() {
        Result r = CliRunner.run("bench", "--device", "cpu", "--matmul-only", "--matmul-shapes", "NT:40x70x30,2*TN:33x8x16:acc");
        assertEquals(0, r.code(), r.err());
        Map<String, Object> report = Json.parseObject(r.out().strip());
        assertFalse(report.containsKey("training"), r.out());
        List<?> rows = (List<?>) report.get("cpu_matmul_fp32");
        int threads = Runtime.getRuntime().availableProcessors();
        assertEquals(4, rows.size(), r.out());
        List<String> shapes = rows.stream().map(o -> (String) ((Map<?, ?>) o).get("shape")).toList();
        assertEquals(List.of("NT:40x70x30", "NT:40x70x30", "2*TN:33x8x16:acc", "2*TN:33x8x16:acc"), shapes);
        for (Object o : rows) {
            Map<?, ?> row = (Map<?, ?>) o;
            assertTrue(((Number) row.get("gflops")).doubleValue() > 0, row.toString());
            long t = ((Number) row.get("threads")).longValue();
            assertTrue(t == 1 || t == threads, row.toString());
        }
    }

    @Test
    void refusesAMalformedShape() {
        Result r = CliRunner.run("bench", "--device", "cpu", "--matmul-only", "--matmul-shapes", "NX:1x2x3");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("matmul shape 'NX:1x2x3': expected [B*]OP:MxNxK[:acc]"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }
}
