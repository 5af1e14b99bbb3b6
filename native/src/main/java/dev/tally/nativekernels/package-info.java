/** Holder for the compiled CUDA kernels, packaged as a resource of this jar. */
package dev.tally.nativekernels;
