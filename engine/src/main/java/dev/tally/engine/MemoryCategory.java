package dev.tally.engine;

import java.util.Locale;

/** What a byte is for. Every arena has exactly one category; the ledger and the plan are broken down by it. */
public enum MemoryCategory {
    WEIGHTS,
    GRADS,
    OPTIMIZER_STATE,
    ACTIVATIONS,
    LOSS,
    WORKSPACE,
    /** Memory owned by the device runtime itself: CUDA context, cuBLAS/cuSOLVER workspaces, loaded modules. */
    RUNTIME,
    OTHER;

    /** Lower-case name as printed in tables and CSV ("optimizer_state"). */
    public String label() { return name().toLowerCase(Locale.ROOT); }

    public static MemoryCategory parse(String s) {
        try {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown memory category '" + s + "'");
        }
    }
}
