package dev.tally.autograd;

import java.util.List;

/** One recorded operation: its inputs, its output, and its backward rule. */
abstract class Node {
    final List<Var> inputs;
    Var output;

    Node(List<Var> inputs) { this.inputs = inputs; }

    /** Adds the gradient of each input that requires one, given the output's gradient. */
    abstract void backward(Graph g);

    /** Frees what forward saved only for backward (beyond the inputs and output themselves). */
    void freeSaved(Graph g) {}
}
