package dev.tally.autograd;

import dev.tally.engine.Arena;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tape of one forward/backward pass. Activations and their gradients live in an ACTIVATIONS arena, loss internals
 * in a LOSS arena; parameter gradients go to a GRADS arena — as persistent buffers that accumulate across
 * micro-batches, or, for layer-wise training, booked when first written and freed by the update hook.
 *
 * <p>Lifetimes are explicit so a static plan can reuse memory: a node's output and saved tensors are freed right after
 * that node's backward has run (every consumer's backward runs earlier), an intermediate gradient right after it has
 * been propagated. A parameter's gradient-ready hooks fire once its last use has been back-propagated, on the last
 * micro-batch only.
 */
public final class Graph implements AutoCloseable {
    final Arena activations;
    final Arena loss;
    private final GradStore grads;
    private final boolean lastMicroBatch;
    private final List<Node> tape = new ArrayList<>();
    /** Nodes not on the tape (nothing to differentiate): their outputs are freed by {@link #close()}. */
    private final List<Node> untracked = new ArrayList<>();
    private final Map<Parameter, Var> paramVars = new IdentityHashMap<>();
    private int noGradDepth;
    private boolean backwardDone;
    private boolean fusedAttention;

    /** Where parameter gradients are booked. */
    public interface GradStore {
        /** The parameter's gradient buffer, booked (and zeroed) if it has none. */
        Tensor gradFor(Parameter p);
    }

    public Graph(Arena activations, Arena loss, GradStore grads, boolean lastMicroBatch) {
        this.activations = activations;
        this.loss = loss;
        this.grads = grads;
        this.lastMicroBatch = lastMicroBatch;
    }

    public Arena activations() { return activations; }

    /**
     * Whether causal attention uses the fused op (O(B·H·T) saved) or the materialized [B, H, T, T] probabilities. Off by
     * default: on the CPU the fused kernel saves the quadratic memory but is still slower than the two blocked GEMMs and
     * the softmax (measured 2-3x at T = 256 and 1024); CUDA has no fused kernel. A META trace must use the setting of the
     * device it plans.
     */
    public Graph fusedAttention(boolean on) {
        this.fusedAttention = on;
        return this;
    }

    public boolean fusedAttention() { return fusedAttention; }
    public Arena lossArena() { return loss; }

    /** Books an activation tensor. */
    public Tensor alloc(String label, DType dtype, int... shape) { return activations.allocate(label, dtype, Shape.of(shape)); }

    void free(Tensor t) {
        if (t != null && t.storage().isAlive() && t.arena() == activations) activations.free(t);
    }

    /** A trainable parameter's var (one per parameter per graph, so uses are counted). */
    public Var param(Parameter p) {
        return paramVars.computeIfAbsent(p, k -> new Var(k.value(), k.requiresGrad() && noGradDepth == 0, k));
    }

    /** A constant input (token ids, targets): never differentiated, owned by the caller. */
    public Var input(Tensor t) {
        return new Var(t, false, null);
    }

    /** Operations inside do not record (evaluation). */
    public AutoCloseable noGrad() {
        noGradDepth++;
        return () -> noGradDepth--;
    }

    boolean recording() { return noGradDepth == 0; }

    /** Registers the node that produced {@code out}; returns a var that requires grad when any input does. */
    private final Map<Node, Integer> order = new IdentityHashMap<>();

    Var record(Node node, Tensor out) {
        order.put(node, order.size());
        boolean needs = recording() && node.inputs.stream().anyMatch(Var::requiresGrad);
        Var v = new Var(out, needs, null);
        node.output = v;
        v.producer = node;
        if (needs) {
            tape.add(node);
            for (Var in : node.inputs) if (in.requiresGrad) in.pendingUses++;
        } else {
            node.freeSaved(this);
            untracked.add(node);
        }
        return v;
    }

    /** The gradient buffer of {@code v}, booked (zeroed) at first use. */
    Tensor gradOf(Var v) {
        if (v.param != null) return grads.gradFor(v.param);
        if (v.grad == null) {
            v.grad = activations.allocate("grad." + v.value.label(), v.value.dtype(), v.value.shape());
            v.value.ops().fill(v.grad, 0);
        }
        return v.grad;
    }

    /**
     * Back-propagates from a one-element {@code lossVar} seeded with {@code seed} (1, or 1/accumulation). Frees every
     * activation of the pass as it goes; hooks fire as parameter gradients become final (last micro-batch only).
     */
    public void backward(Var lossVar, double seed) {
        if (backwardDone) throw new IllegalStateException("backward already ran on this graph");
        if (lossVar.value.numel() != 1) throw new IllegalArgumentException("backward needs a one-element loss, got " + lossVar.value.shape());
        backwardDone = true;
        if (!lossVar.requiresGrad) return;
        Tensor g = gradOf(lossVar);
        g.ops().fill(g, seed);
        for (int i = tape.size() - 1; i >= 0; i--) {
            Node n = tape.get(i);
            n.backward(this);
            n.freeSaved(this);
            free(n.output.grad);
            n.output.grad = null;
            free(n.output.value);
            for (Var in : n.inputs) {
                if (!in.requiresGrad) continue;
                in.pendingUses--;
                if (in.param != null && in.pendingUses == 0 && lastMicroBatch) in.param.fireGradReady();
            }
        }
        tape.clear();
    }

    /** Frees whatever the pass still holds (a forward without backward, e.g. evaluation). */
    @Override public void close() {
        List<Node> all = new ArrayList<>(untracked);
        all.addAll(tape);
        all.sort(java.util.Comparator.comparingInt(n -> -order.get(n)));
        for (Node n : all) {
            if (tape.contains(n)) n.freeSaved(this);
            free(n.output.grad);
            free(n.output.value);
        }
        tape.clear();
        untracked.clear();
    }
}
