package dev.tally.optim;

import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Sizes the step workspace by running each parameter's update on META (the same code path as a real step, so the size
 * is exact; an int8 weight runs in its own storage format, dequantized copy included). Parameters of one group with
 * equal shape and storage take the same path, so each such kind runs once — a LLaMA layer stack costs as much as one
 * layer.
 */
final class WorkspacePlanner {
    private WorkspacePlanner() {}

    /** What decides an update's path: group, shape, storage dtype, values' dtype and (int8 weights) quantization group. */
    private record PathKey(int group, Shape shape, DType storage, DType dtype, int quantGroup) {}

    static long bytes(List<Slot> slots, boolean codeMaps) {
        Map<PathKey, Long> seen = new HashMap<>();
        long worst = 0;
        for (Slot s : slots) {
            Tensor v = s.param.value();
            PathKey key = new PathKey(s.group().index(), v.shape(), v.dtype(), s.param.dtype(),
                    s.param.isQuantized() ? s.param.quantized().groupSize() : 0);
            Long known = seen.get(key);
            if (known == null) {
                known = dryRun(s, codeMaps);
                seen.put(key, known);
            }
            worst = Math.max(worst, known);
        }
        return worst;
    }

    private static long dryRun(Slot s, boolean codeMaps) {
        long worst = 0;
        MemoryLedger scratch = new MemoryLedger();
        for (long step : new long[] {0, 1}) { // step 0 takes the refresh path, step 1 the limiter path
            try (MemoryArena meta = new MemoryArena(scratch, "dry-run", MemoryCategory.OTHER, Device.META, 1L << 50);
                 MemoryArena ws = new MemoryArena(scratch, "dry-run-ws", MemoryCategory.WORKSPACE, Device.META, 1L << 50)) {
                Parameter twin = QuantizedWeightUpdater.metaTwin(s.param, meta); // same storage format (int8 codes too), on META
                Tensor w = twin.value();
                Tensor g = meta.allocate("g", s.param.dtype(), s.param.value().shape());
                ParamState st = new ParamState();
                st.step = step;
                st.refreshes = step;
                for (StateSpec spec : s.specs()) st.tensors.put(spec.name(), meta.allocate(spec.name(), spec.dtype(), spec.shape()));
                Step.CodeMaps codes = codeMaps
                        ? new Step.CodeMaps(meta.allocate("q1", DType.F32, 256), meta.allocate("q2", DType.F32, 256)) : null;
                // supplied projections are host data: the dry run needs only the shapes, so it always computes
                Step ctx = new Step(w.ops(), ws, s.group().hyper(), 1.0, st, w, codes, Projections.COMPUTED);
                s.updater().update(ctx, twin, w, g);
                worst = Math.max(worst, ws.highWater());
            }
        }
        return worst;
    }
}
