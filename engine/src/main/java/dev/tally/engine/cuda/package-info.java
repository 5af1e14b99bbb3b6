/**
 * The CUDA device: {@link dev.tally.engine.cuda.CudaBackend} (context, one stream, one cudaMalloc per arena, runtime
 * memory measured with cudaMemGetInfo and booked as RUNTIME) and its {@link dev.tally.engine.Ops} with the CPU backend's
 * semantics: kernels from the tally-native fatbin, GEMMs through cuBLAS, SVD through cuSOLVER. Libraries are found by
 * {@link dev.tally.engine.cuda.CudaLibraries} and called through the generated bindings in {@code dev.tally.jextract}.
 * System properties: {@code tally.cuda.libdir} (library folder override; env {@code TALLY_CUDA_LIBDIR}),
 * {@code tally.cuda.tf32} (let fp32 GEMMs use TF32 tensor cores).
 */
package dev.tally.engine.cuda;
