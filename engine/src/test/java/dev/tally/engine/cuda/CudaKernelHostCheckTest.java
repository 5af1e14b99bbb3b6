package dev.tally.engine.cuda;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.cpu.Philox;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The kernels' pure arithmetic compiled for the host with nvcc (no GPU needed): Philox rounds and uniforms against the
 * CPU backend's stream, strided index arithmetic against Tensor's views, every unary/binary op code, the exact integer
 * path of the elementwise kernels above 2^24, reduceAll's and RMSNorm dweight's two-stage arithmetic (per-thread and
 * per-block work emulated on the host) against the CPU backend. Skipped where nvcc is not installed.
 */
class CudaKernelHostCheckTest {
    private static final Path SOURCE = Path.of("../native/src/test/cuda/host_check.cu");

    private static Path nvcc() {
        for (String c : new String[]{System.getenv("NVCC"), System.getenv("CUDA_HOME") == null ? null
                : System.getenv("CUDA_HOME") + "/bin/nvcc", "/usr/local/cuda/bin/nvcc"}) {
            if (c != null && Files.isExecutable(Path.of(c))) return Path.of(c);
        }
        return null;
    }

    /** printf's %g spelling: nan, -nan, inf, -inf besides numbers. */
    private static double c(String v) {
        return switch (v) {
            case "nan", "-nan" -> Double.NaN;
            case "inf" -> Double.POSITIVE_INFINITY;
            case "-inf" -> Double.NEGATIVE_INFINITY;
            default -> Double.parseDouble(v);
        };
    }

    /** The kernel's float result for one op code against the CPU backend's op of the enum constant with that ordinal. */
    private static void checkElementwise(String[] f, dev.tally.engine.Ops cpu, dev.tally.engine.MemoryArena arena, String line) {
        long mark = arena.mark();
        try {
            Tensor x = arena.allocate("x", DType.F32, 1), y = arena.allocate("y", DType.F32, 1), out = arena.allocate("o", DType.F32, 1);
            int op = Integer.parseInt(f[1]);
            double got = c(f[f.length - 1]);
            x.copyFrom(new double[]{c(f[2])});
            switch (f[0]) {
                case "unary" -> cpu.unary(UnaryOp.values()[op], x, out);
                case "grad" -> {
                    y.copyFrom(new double[]{c(f[3])});
                    cpu.unaryBackward(UnaryOp.values()[op], x, y, out);
                }
                default -> {
                    y.copyFrom(new double[]{c(f[3])});
                    cpu.binary(BinaryOp.values()[op], x, y, out);
                }
            }
            double want = out.item();
            if (Double.isNaN(want)) {
                assertTrue(Double.isNaN(got), line + ": expected NaN");
            } else {
                assertEquals(want, got, 2e-6 * Math.max(1, Math.abs(want)), line + " (cpu " + want + ")");
            }
        } finally {
            arena.release(mark);
        }
    }

    /** ibinary DT OP A B Y / iscalar OP A S Y: the kernel's integer path gives exactly the CPU's result. */
    private static void checkInteger(String[] f, dev.tally.engine.Ops cpu, dev.tally.engine.MemoryArena arena, String line) {
        long mark = arena.mark();
        try {
            boolean scalar = f[0].equals("iscalar");
            DType dt = scalar ? DType.I64 : DType.values()[Integer.parseInt(f[1])];
            int at = scalar ? 1 : 2;
            BinaryOp op = BinaryOp.values()[Integer.parseInt(f[at])];
            Tensor a = arena.allocate("a", dt, 1), out = arena.allocate("o", dt, 1);
            a.copyFrom(new long[]{Long.parseLong(f[at + 1])});
            if (scalar) {
                cpu.binaryScalar(op, a, Double.parseDouble(f[at + 2]), out);
            } else {
                Tensor b = arena.allocate("b", dt, 1);
                b.copyFrom(new long[]{Long.parseLong(f[at + 2])});
                cpu.binary(op, a, b, out);
            }
            assertEquals(out.toLongArray()[0], Long.parseLong(f[at + 3]), line);
        } finally {
            arena.release(mark);
        }
    }

    /** The values of host_check.cu's reduce_value. */
    private static double[] reduceCase(int c) {
        int n = c == 3 ? 5 : 10000;
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((i * 7919L) % 2001 - 1000) / 64f;
            if (c == 1 && i == 4321) v[i] = Double.NaN;
            if (c == 2 && i == 17) v[i] = Double.POSITIVE_INFINITY;
            if (c == 3) v[i] = Double.NEGATIVE_INFINITY;
        }
        return v;
    }

    /** reduce CASE OP Y: the two-stage arithmetic against CPU reduceAll, fp32 accumulation within 1e-6 relative. */
    private static void checkReduce(String[] f, dev.tally.engine.Ops cpu, dev.tally.engine.MemoryArena arena, String line) {
        long mark = arena.mark();
        try {
            double[] v = reduceCase(Integer.parseInt(f[1]));
            Tensor x = arena.allocate("x", DType.F32, v.length).copyFrom(v), out = arena.allocate("o", DType.F32, 1);
            cpu.reduceAll(dev.tally.engine.ReduceOp.values()[Integer.parseInt(f[2])], x, out);
            double want = out.item(), got = c(f[3]);
            if (Double.isNaN(want) || Double.isInfinite(want)) assertEquals(want, got, 0.0, line + " (cpu " + want + ")");
            else assertEquals(want, got, 1e-6 * Math.max(1, Math.abs(want)), line + " (cpu " + want + ")");
        } finally {
            arena.release(mark);
        }
    }

    /** dweight CHUNKS J Y: RMSNorm's weight gradient in two stages against CPU rmsNormBackward. */
    private static void checkDweight(String[] f, dev.tally.engine.Ops cpu, String line) {
        int rows = 100, n = 12;
        double[] x = new double[rows * n], dy = new double[rows * n], rstd = new double[rows];
        for (int i = 0; i < rows * n; i++) {
            x[i] = (float) ((i * 37) % 101 - 50) / 16f;
            dy[i] = (float) ((i * 53) % 97 - 48) / 32f;
        }
        for (int r = 0; r < rows; r++) rstd[r] = 0.5f + (float) (r % 7) / 8f;
        try (dev.tally.engine.MemoryArena a = new dev.tally.engine.MemoryArena(new MemoryLedger(), "dweight", MemoryCategory.OTHER,
                dev.tally.engine.Device.CPU, 64 << 10)) {
            Tensor xt = a.allocate("x", DType.F32, rows, n).copyFrom(x), dyt = a.allocate("dy", DType.F32, rows, n).copyFrom(dy);
            Tensor rt = a.allocate("rstd", DType.F32, rows).copyFrom(rstd), w = a.allocate("w", DType.F32, n);
            Tensor dx = a.allocate("dx", DType.F32, rows, n), dw = a.allocate("dw", DType.F32, n);
            cpu.fill(w, 1);
            cpu.rmsNormBackward(xt, w, rt, dyt, dx, dw);
            double want = dw.toDoubleArray()[Integer.parseInt(f[2])];
            assertEquals(want, c(f[3]), 1e-6 * Math.max(1, Math.abs(want)), line + " (cpu " + want + ")");
        }
    }

    /** host_check.cu's argsort_key. */
    private static float argsortKey(int c, long i) {
        if (c % 2 == 1) return (float) ((i * 37) % 11) - 5.0f;
        if (i % 13 == 3) return Float.NaN;
        if (i % 17 == 5) return -0.0f;
        if (i % 17 == 6) return 0.0f;
        if (i % 29 == 7) return (i % 2) != 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
        return (float) ((i * 7919) % 2003 - 1000) / 8.0f;
    }

    /** The device's network (run on the host) gives the CPU backend's order for case c, element for element. */
    private static void checkArgsort(int c, int n, List<Integer> network) {
        try (dev.tally.engine.MemoryArena arena = new dev.tally.engine.MemoryArena(new MemoryLedger(), "argsort", MemoryCategory.OTHER,
                dev.tally.engine.Device.CPU, 64 << 10)) {
            Tensor keys = arena.allocate("keys", DType.F32, n), order = arena.allocate("order", DType.I32, n);
            double[] k = new double[n];
            for (int i = 0; i < n; i++) k[i] = argsortKey(c, i);
            keys.copyFrom(k);
            keys.ops().argsort(keys, order, null);
            long[] cpu = order.toLongArray();
            assertEquals(n, network.size(), "argsort case " + c);
            for (int i = 0; i < n; i++) assertEquals(cpu[i], (long) network.get(i), "argsort case " + c + " (n " + n + ") position " + i);
        }
    }

    @Test void kernelArithmeticMatchesTheCpuBackend(@TempDir Path tmp) throws IOException, InterruptedException {
        Path nvcc = nvcc();
        assumeTrue(nvcc != null, "skipped: nvcc not installed (set NVCC or CUDA_HOME)");
        assumeTrue(Files.exists(SOURCE), "skipped: " + SOURCE.toAbsolutePath() + " not found (run from the engine module)");
        Path exe = tmp.resolve("host_check");
        Process compile = new ProcessBuilder(nvcc.toString(), "-std=c++17", "-o", exe.toString(), SOURCE.toString())
                .redirectErrorStream(true).start();
        String log = new String(compile.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(compile.waitFor(5, TimeUnit.MINUTES) && compile.exitValue() == 0, "nvcc failed:\n" + log);
        Process run = new ProcessBuilder(exe.toString()).redirectErrorStream(true).start();
        List<String> lines = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        assertEquals(0, run.waitFor());

        int philox = 0, uniform = 0, offsets = 0, rows = 0, elementwise = 0, integer = 0, reduce = 0, dweight = 0;
        java.util.Map<Integer, List<Integer>> argsortLines = new java.util.TreeMap<>();
        java.util.Map<Integer, Integer> argsortSizes = new java.util.TreeMap<>();
        try (dev.tally.engine.MemoryArena arena = new dev.tally.engine.MemoryArena(new MemoryLedger(), "views", MemoryCategory.OTHER,
                dev.tally.engine.Device.CPU, 64 << 10)) {
            // the same view as host_check.cu: [3, 4, 5] with strides (1, 15, 3) = a permuted contiguous [4, 5, 3]
            Tensor base = arena.allocate("base", DType.F32, 4, 5, 3);
            Tensor view = base.permute(2, 0, 1);
            assertArrayEquals(new long[]{1, 15, 3}, view.strides());
            for (String line : lines) {
                String[] f = line.split(" ");
                switch (f[0]) {
                    case "philox" -> {
                        long seed = Long.parseUnsignedLong(f[1]), ctr = Long.parseUnsignedLong(f[2]);
                        int[] expect = Philox.block((int) ctr, (int) (ctr >>> 32), 0, 0, (int) seed, (int) (seed >>> 32));
                        for (int l = 0; l < 4; l++) {
                            assertEquals(expect[l], (int) Long.parseLong(f[3 + l]), "philox lane " + l + " for " + line);
                        }
                        philox++;
                    }
                    case "uniform" -> {
                        assertEquals(Philox.uniform((int) Long.parseLong(f[1])), Double.parseDouble(f[2]), 0.0, line);
                        uniform++;
                    }
                    case "offset" -> {
                        long i = Long.parseLong(f[1]);
                        int[] idx = {(int) (i / 20), (int) (i / 5 % 4), (int) (i % 5)};
                        long expect = idx[0] * view.stride(0) + idx[1] * view.stride(1) + idx[2] * view.stride(2);
                        assertEquals(expect, Long.parseLong(f[2]), line);
                        offsets++;
                    }
                    case "row" -> {
                        long r = Long.parseLong(f[1]);
                        assertEquals((r / 4) * view.stride(0) + (r % 4) * view.stride(1), Long.parseLong(f[2]), line);
                        rows++;
                    }
                    case "unary", "grad", "binary" -> {
                        checkElementwise(f, base.ops(), arena, line);
                        elementwise++;
                    }
                    case "ibinary", "iscalar" -> {
                        checkInteger(f, base.ops(), arena, line);
                        integer++;
                    }
                    case "reduce" -> {
                        checkReduce(f, base.ops(), arena, line);
                        reduce++;
                    }
                    case "dweight" -> {
                        checkDweight(f, base.ops(), line);
                        dweight++;
                    }
                    case "argsort" -> {
                        argsortLines.computeIfAbsent(Integer.parseInt(f[1]), c -> new java.util.ArrayList<>()).add(Integer.parseInt(f[4]));
                        argsortSizes.put(Integer.parseInt(f[1]), Integer.parseInt(f[2]));
                    }
                    default -> fail("unexpected line " + line);
                }
            }
        }
        assertEquals(20, philox);
        assertEquals(7 * 2 * UnaryOp.values().length + 25 * BinaryOp.values().length, elementwise, "every op code checked");
        assertEquals(5, uniform);
        assertEquals(BinaryOp.values().length * 7 * 3, integer, "I64, I64 with a scalar and I32, every op code");
        assertEquals(4 * dev.tally.engine.ReduceOp.values().length, reduce, "4 cases, every reduce op");
        assertEquals(3 * 12, dweight, "1, 6 and 16 chunks, 12 columns");
        assertEquals(9, argsortLines.size(), "argsort cases");
        argsortLines.forEach((c, order) -> checkArgsort(c, argsortSizes.get(c), order));
        assertTrue(offsets >= 8 && rows >= 3, lines.toString());
        // Random123's known answer for Philox4x32-10, counter 0 and key 0
        assertTrue(lines.getFirst().endsWith(" " + 0x6627e8d5L + " " + 0xe169c58dL + " " + 0xbc57ac4cL + " " + 0x9b00dbd8L), lines.getFirst());
    }
}
