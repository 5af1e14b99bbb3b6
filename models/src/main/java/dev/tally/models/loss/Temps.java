package dev.tally.models.loss;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.List;

/** Step-local temporaries freed explicitly in reverse order (planned arenas replay offsets, so marks do not apply). */
final class Temps {
    private final MemoryArena arena;
    private final List<Tensor> tensors = new ArrayList<>();

    Temps(MemoryArena arena) { this.arena = arena; }

    Tensor add(String label, DType dtype, int... shape) {
        Tensor t = arena.allocate(label, dtype, shape);
        tensors.add(t);
        return t;
    }

    void freeAll() {
        for (int i = tensors.size() - 1; i >= 0; i--) {
            if (tensors.get(i).storage().isAlive()) arena.free(tensors.get(i));
        }
        tensors.clear();
    }
}
