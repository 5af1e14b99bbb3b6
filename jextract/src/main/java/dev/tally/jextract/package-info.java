/** Generated FFM bindings (CUDA runtime/driver, cuBLAS, cuSOLVER). No logic: the engine's CUDA device wraps them. */
package dev.tally.jextract;
