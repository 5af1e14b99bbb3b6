package dev.tally.engine.cuda;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.TestDevices;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ledger's total for a GPU moves with cudaMemGetInfo's used bytes, to the byte (and equals it when this ledger is
 * the only one holding GPU arenas); everything after warm-up is explained by arenas and measured cudaMalloc granularity
 * (nothing "lazily loaded" appears). Skipped without a GPU.
 */
class CudaLedgerTest {
    private static final Device GPU = Device.cuda(0);

    @Test void ledgerTotalIsTheDevicesUsedMemory() {
        TestDevices.assumeUsable(GPU);
        CudaBackend backend = (CudaBackend) Backends.of(GPU);
        MemoryLedger ledger = new MemoryLedger();
        // warm-up: cuBLAS and cuSOLVER load their kernels lazily on first use
        try (MemoryArena warm = new MemoryArena(ledger, "warm-up", MemoryCategory.WORKSPACE, GPU, 1 << 20)) {
            Tensor a = warm.allocate("a", DType.BF16, 64, 64), c = warm.allocate("c", DType.F32, 64, 64);
            a.ops().random(a, dev.tally.engine.Distribution.NORMAL, 1, 0, 0, 1);
            a.ops().matmul(a, a, c, 1, 0);
            Tensor f = warm.allocate("f", DType.F32, 16, 8), u = warm.allocate("u", DType.F32, 16, 8),
                    s = warm.allocate("s", DType.F32, 8), vt = warm.allocate("vt", DType.F32, 8, 8);
            f.ops().random(f, dev.tally.engine.Distribution.NORMAL, 2, 0, 0, 1);
            f.ops().svd(f, u, s, vt);
            f.ops().synchronize();
        }
        String lazy = GPU + " lazily loaded by CUDA libraries";
        long lazyAfterWarmUp = backend.runtimeMemory().get(lazy);
        backend.reportRuntimeMemory(ledger);
        // other tests in this JVM may hold arenas booked in other ledgers: compare this ledger's change with the device's
        long usedBefore = backend.deviceUsedBytes(), ledgerBefore = ledger.totalCapacity(GPU);

        // odd sizes: cudaMalloc rounds them up, which the granularity label must absorb exactly
        try (MemoryArena w = new MemoryArena(ledger, "weights", MemoryCategory.WEIGHTS, GPU, 3_000_000 + 17);
             MemoryArena g = new MemoryArena(ledger, "grads", MemoryCategory.GRADS, GPU, 123_456)) {
            Tensor x = w.allocate("x", DType.BF16, 1000, 1000), y = g.allocate("y", DType.F32, 100, 100);
            x.ops().fill(x, 1);
            y.ops().fill(y, 2);
            x.ops().synchronize();
            backend.reportRuntimeMemory(ledger);
            long used = backend.deviceUsedBytes();
            Map<String, Long> rt = backend.runtimeMemory();
            assertEquals(used - usedBefore, ledger.totalCapacity(GPU) - ledgerBefore,
                    "ledger change vs cudaMemGetInfo change (total - free)\n" + ledger.table());
            if (usedBefore == ledgerBefore) {
                assertEquals(used, ledger.totalCapacity(GPU), "ledger total vs cudaMemGetInfo used bytes");
            }
            assertEquals(lazyAfterWarmUp, rt.get(lazy), "memory appeared that no arena or measured call explains");
            assertTrue(ledger.entry(GPU, MemoryCategory.RUNTIME).capacity() > 0);
            assertEquals(MemoryArena.alignUp(3_000_000 + 17), ledger.entry(GPU, MemoryCategory.WEIGHTS).capacity());
        }
        backend.reportRuntimeMemory(ledger);
        assertEquals(backend.deviceUsedBytes() - usedBefore, ledger.totalCapacity(GPU) - ledgerBefore,
                "after closing the arenas\n" + ledger.table());
    }
}
