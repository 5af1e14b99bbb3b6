package dev.tally.autograd;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** A parameter with requiresGrad off is a constant to the graph: backward leaves its gradient alone, not its inputs'. */
class FrozenParameterTest {

    @Test
    void aFrozenWeightGetsNoGradientWhileTheInputStillDoes() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryArena weights = new MemoryArena(ledger, "weights", MemoryCategory.WEIGHTS, Device.CPU, 1 << 16);
             MemoryArena grads = new MemoryArena(ledger, "grads", MemoryCategory.GRADS, Device.CPU, 1 << 16);
             MemoryArena acts = new MemoryArena(ledger, "acts", MemoryCategory.ACTIVATIONS, Device.CPU, 1 << 16);
             MemoryArena lossArena = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, Device.CPU, 1 << 16)) {
            double[] xv = {1, -2, 0.5, 3, 0.25, -1}, wv = {1, 0, 2, -1, 1, 0, 0.5, 0.5, -2, 3, 1, 1};
            Parameter x = new Parameter("x", weights.allocate("x", DType.F32, 2, 3).copyFrom(xv));
            Parameter w = new Parameter("w", weights.allocate("w", DType.F32, 4, 3).copyFrom(wv));
            w.setRequiresGrad(false);
            assertFalse(w.requiresGrad());
            for (Parameter p : List.of(x, w)) {
                Tensor g = grads.allocate("grad." + p.name(), DType.F32, p.value().shape());
                g.ops().fill(g, 0);
                p.setGrad(g);
            }
            double[] seed = {1, 2, 3, 4, -1, -2, -3, -4};
            Tensor seedT = acts.allocate("seed", DType.F32, 2, 4).copyFrom(seed);
            Graph graph = new Graph(acts, lossArena, Parameter::grad, true);
            Var y = Functions.linear(graph, graph.param(x), graph.param(w)); // y = x·wᵀ, [2, 4]
            Var loss = Functions.externalLoss(graph, List.of(y), new Functions.ExternalLoss() { // L = Σ seed ∘ y
                @Override public void forward(Tensor t) { t.copyFrom(new double[]{0}); }
                @Override public void backward(Tensor dLoss, Graph gr) {
                    Tensor dy = Functions.gradOf(gr, y);
                    dy.ops().binary(BinaryOp.ADD, dy, seedT, dy);
                }
                @Override public void discard() {}
            });
            graph.backward(loss, 1.0);
            graph.close();
            double[] dx = new double[6]; // dL/dx = seed · w
            for (int i = 0; i < 2; i++) for (int k = 0; k < 3; k++) for (int j = 0; j < 4; j++) dx[i * 3 + k] += seed[i * 4 + j] * wv[j * 3 + k];
            assertArrayEquals(dx, x.grad().toDoubleArray(), 1e-6, "the input's gradient");
            assertArrayEquals(new double[12], w.grad().toDoubleArray(), 0.0, "the frozen weight's gradient stays untouched");
        }
    }
}
