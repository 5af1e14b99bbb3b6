/**
 * Tensors, devices, arenas, the memory ledger and planner, safetensors I/O, and the CPU, CUDA and META backends.
 * Exported: the tensor/memory API ({@code dev.tally.engine}), file I/O ({@code dev.tally.engine.io}), the static
 * memory planner ({@code dev.tally.engine.plan}) and the per-op profiler ({@code dev.tally.engine.profile}). The
 * backends' kernels stay inside the module.
 */
module dev.tally.engine {
    requires transitive jdk.incubator.vector;
    requires dev.tally.jextract;
    requires dev.tally.kernels;
    requires java.management; // thread CPU time in the GEMM benchmark
    requires jdk.management;  // free physical memory: what a CPU plan may use

    exports dev.tally.engine;
    exports dev.tally.engine.io;
    exports dev.tally.engine.plan;
    exports dev.tally.engine.profile; // per-op timing of a step (tally bench --profile)
    // The CPU GEMM benchmark behind `tally bench --matmul`; the kernels themselves are not API.
    exports dev.tally.engine.cpu to dev.tally.cli;
}
