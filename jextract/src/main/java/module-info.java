/**
 * FFM bindings to the CUDA runtime, cuBLAS and cuSOLVER, in jextract's shape. Generated code with no logic; only the
 * engine's CUDA backend may use it, so nothing here is part of Tally's public API.
 */
module dev.tally.jextract {
    exports dev.tally.jextract to dev.tally.engine;
}
