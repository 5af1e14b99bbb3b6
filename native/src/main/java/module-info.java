/** The compiled CUDA kernels (a fatbin resource) and where to find them; read by the engine's CUDA backend only. */
module dev.tally.kernels {
    exports dev.tally.nativekernels to dev.tally.engine;
}
