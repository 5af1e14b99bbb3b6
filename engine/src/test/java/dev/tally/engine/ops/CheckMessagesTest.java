package dev.tally.engine.ops;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad calls fail before touching memory, with messages naming the op, the shapes and the labels — on every device. */
class CheckMessagesTest {

    static Stream<Device> devicesWithMeta() {
        return Stream.concat(TestDevices.all(), Stream.of(Device.META));
    }

    private static void fails(Executable call, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String p : parts) assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' should mention " + p);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devicesWithMeta")
    void shapeErrorsNameShapesAndLabels(Device device) {
        TestDevices.assumeUsable(device);
        Ops ops = Backends.of(device).ops();
        try (MemoryArena arena = TestArenas.open(device)) {
            Tensor a = arena.allocate("hidden", DType.F32, 3, 4);
            Tensor b = arena.allocate("bias", DType.F32, 5);
            Tensor out = arena.allocate("sum", DType.F32, 3, 4);
            fails(() -> ops.binary(BinaryOp.ADD, a, b, out), "binary ADD", "[3, 4]", "[5]", "do not broadcast");
            Tensor w = arena.allocate("wq", DType.BF16, 5, 6);
            Tensor o2 = arena.allocate("proj", DType.F32, 3, 6);
            fails(() -> ops.matmul(a, w, o2, 1, 0), "matmul", "[3, 4]", "hidden", "[5, 6]", "wq", "inner 4 vs 5");
            Tensor bad = arena.allocate("red", DType.F32, 3, 2);
            fails(() -> ops.reduce(ReduceOp.SUM, a, 1, bad), "reduce SUM", "[3, 1]", "red", "hidden");
            Tensor ids = arena.allocate("ids", DType.F32, 3);
            Tensor emb = arena.allocate("emb", DType.F32, 3, 4);
            fails(() -> ops.embedding(a, ids, emb), "embedding", "I32 or I64", "ids");
            Tensor rstd = arena.allocate("rstd", DType.F32, 2);
            Tensor gamma = arena.allocate("gamma", DType.F32, 4);
            fails(() -> ops.rmsNorm(a, gamma, 1e-6, out, rstd), "rmsNorm", "rstd", "one value per row");
            Tensor u = arena.allocate("u", DType.F32, 3, 3);
            Tensor s = arena.allocate("s", DType.F32, 3);
            Tensor vt = arena.allocate("vt", DType.F32, 4, 3);
            fails(() -> ops.svd(a, u, s, vt), "svd", "hidden", "vt [3, 4]", "[4, 3]");
            Tensor q = arena.allocate("q", DType.U8, 12), am = arena.allocate("absmax", DType.F32, 2);
            Tensor code = arena.allocate("code", DType.F32, 256);
            fails(() -> ops.quantizeBlockwise(a, code, am, q, 4, true), "quantizeBlockwise", "absmax", "3 F32 values");
            fails(() -> ops.quantizeBlockwise(a, code, am, q, 0, true), "block size must be positive");
            if (!device.equals(Device.META)) {
                try (MemoryArena other = TestArenas.open(Device.META)) {
                    Tensor m = other.allocate("elsewhere", DType.F32, 3, 4);
                    fails(() -> ops.copy(m, out), "copy", "elsewhere", "meta");
                }
            }
        }
    }
}
