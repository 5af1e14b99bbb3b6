package dev.tally.autograd;

import dev.tally.engine.BinaryOp;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.DType;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * The tape of one forward/backward pass. Activations and their gradients live in an ACTIVATIONS arena, loss internals
 * in a LOSS arena; parameter gradients go to a GRADS arena — as persistent buffers that accumulate across
 * micro-batches, or, for layer-wise training, booked when first written and freed by the update hook.
 *
 * <p>Lifetimes are explicit so a static plan can reuse memory: a node's output and saved tensors are freed right after
 * that node's backward has run (every consumer's backward runs earlier), an intermediate gradient right after it has
 * been propagated. A parameter's gradient-ready hooks fire once its last use has been back-propagated, on the last
 * micro-batch only.
 *
 * <p>Activation recompute: {@link #checkpoint} runs a segment (a decoder layer) keeping only its input and output, and
 * runs it again during backward to rebuild what its backward needs.
 */
public final class Graph implements AutoCloseable {
    final MemoryArena activations;
    final MemoryArena loss;
    private final GradStore grads;
    private final boolean lastMicroBatch;
    /** Recorded nodes in forward order; a checkpointed segment's recompute swaps in its own tape while it runs. */
    private List<Node> tape = new ArrayList<>();
    /** Nodes not on the tape (nothing to differentiate): their outputs are freed by {@link #close()}. */
    private List<Node> untracked = new ArrayList<>();
    private final Map<Parameter, Var> paramVars = new IdentityHashMap<>();
    private int noGradDepth;
    private boolean backwardDone;
    private boolean fusedAttention;

    /** Where parameter gradients are booked. */
    public interface GradStore {
        /** The parameter's gradient buffer, booked (and zeroed) if it has none. */
        Tensor gradFor(Parameter p);
    }

    public Graph(MemoryArena activations, MemoryArena loss, GradStore grads, boolean lastMicroBatch) {
        this.activations = activations;
        this.loss = loss;
        this.grads = grads;
        this.lastMicroBatch = lastMicroBatch;
    }

    public MemoryArena activations() { return activations; }

    /**
     * Whether causal attention uses the fused op (O(B·H·T) saved) or the materialized [B, H, T, T] probabilities. Off
     * unless asked for: the graph does not know its device; the trainer turns it on for the CPU, where the fused kernel is
     * also the faster path, and leaves it off on CUDA, which has no fused kernel. A META trace must use the setting of
     * the device it plans.
     */
    public Graph fusedAttention(boolean on) {
        this.fusedAttention = on;
        return this;
    }

    public boolean fusedAttention() { return fusedAttention; }
    public MemoryArena lossArena() { return loss; }

    /** Books an activation tensor. */
    public Tensor alloc(String label, DType dtype, int... shape) { return activations.allocate(label, dtype, Shape.of(shape)); }

    void free(Tensor t) {
        if (t != null && t.storage().isAlive() && t.arena() == activations) activations.free(t);
    }

    /**
     * A trainable parameter's var (one per parameter per graph, so uses are counted). Whether it wants a gradient is the
     * parameter's own setting: under {@link #noGrad()} nothing is recorded anyway, and a checkpointed segment's forward
     * (which records nothing) must not freeze the var of a parameter that its recompute will differentiate.
     */
    public Var param(Parameter p) {
        Var v = paramVars.computeIfAbsent(p, k -> new Var(k.value(), k.requiresGrad(), k));
        if (segmentParams != null) segmentParams.add(v);
        return v;
    }

    /** While a checkpointed segment's forward runs: the parameter vars it reads (in first-use order). */
    private java.util.LinkedHashSet<Var> segmentParams;

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
     * Whether {@code v}'s gradient has had no contribution yet: an activation var whose buffer is not booked. Its first
     * contribution may then be written into a buffer from {@link #gradForOverwrite} instead of zero-filling one and adding
     * onto it — the same values (0 + x = x in IEEE arithmetic, except that −0 stays −0 instead of becoming +0, which
     * no later add, multiply, square or optimizer step tells apart from +0) at one pass instead of three. Parameters
     * always accumulate (their gradients persist across micro-batches).
     */
    boolean gradFresh(Var v) { return writeFirstContributions && v.param == null && v.grad == null; }

    /** Off: every contribution is added onto a zero-filled buffer (the way it was; tests compare the two). */
    private boolean writeFirstContributions = true;

    Graph writeFirstContributions(boolean on) {
        this.writeFirstContributions = on;
        return this;
    }

    /** Books the gradient buffer of a {@link #gradFresh} var without zeroing it: the caller writes every element. */
    Tensor gradForOverwrite(Var v) {
        if (!gradFresh(v)) throw new IllegalStateException("gradForOverwrite on a gradient that already has contributions");
        v.grad = activations.allocate("grad." + v.value.label(), v.value.dtype(), v.value.shape());
        return v.grad;
    }

    /** Adds {@code x} into {@code v}'s gradient; the first contribution is copied instead (no zero-fill, no add). */
    void accumulateGrad(Var v, Tensor x) {
        Ops ops = x.ops();
        if (gradFresh(v)) ops.copy(x, gradForOverwrite(v));
        else ops.binary(BinaryOp.ADD, gradOf(v), x, gradOf(v));
    }

    /**
     * Passes {@code node}'s output gradient on to its input {@code v} unchanged (a sum's backward). When that is
     * {@code v}'s first contribution the buffer itself changes hands: the output's gradient is dead after this node's
     * backward anyway, so no copy, no zero-fill and one buffer fewer; otherwise it is added.
     */
    void passGrad(Var output, Var v) {
        Tensor dy = gradOf(output);
        if (gradFresh(v) && v != output && dy.arena() == activations && dy.shape().equals(v.value.shape()) && dy.dtype() == v.value.dtype()) {
            v.grad = dy;
            output.grad = null;
        } else {
            accumulateGrad(v, dy);
        }
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
        runBackward(tape);
    }

    /** Runs the nodes of {@code nodes} backwards, freeing as it goes; hooks fire as parameters' last uses are done. */
    private void runBackward(List<Node> nodes) {
        for (int i = nodes.size() - 1; i >= 0; i--) {
            Node n = nodes.get(i);
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
        nodes.clear();
    }

    // ------------------------------------------------------------------ activation recompute

    /**
     * Runs {@code body} on {@code input} as a checkpointed segment: forward computes it without recording and frees
     * every intermediate at the segment's end, keeping only the input (the caller's) and the output; backward runs
     * {@code body} again on the same input — the same ops on the same bits, so the same values — and back-propagates
     * through that recomputed tape. Gradients are bit-identical to running {@code body} plainly: the recomputed nodes
     * are the plain nodes, back-propagated in the same order, and the input's gradient is accumulated in place.
     *
     * <p>The body must be a pure function of its input and the parameters it reads through {@link #param} (it is run
     * twice). Parameter uses are counted as if the body had run plainly: the segment holds one use of each parameter
     * it reads until its backward starts, then hands that use over to the recomputed nodes, so a parameter read only
     * inside the segment becomes final — and fires its gradient-ready hooks — right after its last recomputed use, as
     * without recompute (layer-wise updates still free each gradient before the next one is computed).
     */
    public Var checkpoint(String name, Var input, BiFunction<Graph, Var, Var> body) {
        List<Node> outerUntracked = untracked;
        java.util.LinkedHashSet<Var> outerParams = segmentParams;
        untracked = new ArrayList<>();
        segmentParams = new java.util.LinkedHashSet<>();
        noGradDepth++;
        Var out;
        List<Node> inner;
        java.util.LinkedHashSet<Var> params;
        try {
            out = body.apply(this, new Var(input.value, input.requiresGrad, null));
        } finally {
            noGradDepth--;
            inner = untracked;
            params = segmentParams;
            untracked = outerUntracked;
            segmentParams = outerParams;
        }
        if (outerParams != null) outerParams.addAll(params); // a segment nested in a segment: the outer one reads them too
        if (out.producer == null || !inner.contains(out.producer)) {
            throw new IllegalStateException("checkpoint '" + name + "': the body must return a value it computed, not its input or a leaf");
        }
        // Free the segment's intermediates, newest first, keeping the output (it becomes the segment node's output).
        for (int i = inner.size() - 1; i >= 0; i--) {
            Node n = inner.get(i);
            if (n != out.producer) free(n.output.value);
        }
        List<Var> paramList = List.copyOf(params);
        Node seg = new Segment(name, input, paramList, body);
        order.put(seg, order.size());
        boolean needs = recording() && (input.requiresGrad || paramList.stream().anyMatch(Var::requiresGrad));
        Var v = new Var(out.value, needs, null);
        seg.output = v;
        v.producer = seg;
        if (needs) {
            tape.add(seg);
            if (input.requiresGrad) input.pendingUses++;
            for (Var p : paramList) if (p.requiresGrad) p.pendingUses++;
        } else {
            untracked.add(seg);
        }
        return v;
    }

    /** A checkpointed segment on the tape: its one input is the segment's input; it holds its parameters' uses itself. */
    private final class Segment extends Node {
        private final String name;
        private final List<Var> params;
        private final BiFunction<Graph, Var, Var> body;

        Segment(String name, Var input, List<Var> params, BiFunction<Graph, Var, Var> body) {
            super(List.of(input));
            this.name = name;
            this.params = params;
            this.body = body;
        }

        @Override void backward(Graph g) {
            Var input = inputs.getFirst();
            List<Node> outerTape = tape;
            tape = new ArrayList<>();
            try {
                // Every consumer's backward has run, so the kept output is dead: free it before the recompute makes its twin.
                free(output.value);
                // hand the segment's use of each parameter over to the recomputed nodes (they count their own uses)
                for (Var p : params) if (p.requiresGrad) p.pendingUses--;
                Var alias = new Var(input.value, input.requiresGrad, null);
                Var out = body.apply(g, alias);
                if (out.value.numel() != output.value.numel()) {
                    throw new IllegalStateException("checkpoint '" + name + "': the recomputed output " + out.value.shape()
                            + " differs from the forward's " + output.value.shape());
                }
                if (out.requiresGrad) {
                    out.grad = gradOf(output); // the gradient flowing into the segment's output
                    output.grad = null;        // now owned (and freed) by the recomputed tape
                    if (alias.requiresGrad) alias.grad = gradOf(input); // accumulate straight into the input's gradient
                    runBackward(tape);
                } else {
                    close(tape);
                }
            } finally {
                tape = outerTape;
            }
        }
    }

    /** Frees what the nodes of an unfinished pass still hold, newest first. */
    private void close(List<Node> nodes) {
        for (int i = nodes.size() - 1; i >= 0; i--) {
            Node n = nodes.get(i);
            n.freeSaved(this);
            free(n.output.grad);
            free(n.output.value);
        }
        nodes.clear();
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
