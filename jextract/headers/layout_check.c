/* Prints the constants and struct layouts the hand-written bindings in src/main/java rely on, from the real headers.
   Run by ../regenerate.sh; its output is committed as layout-cuda-runtime.txt and compared by that script. */
#include <stdio.h>
#include <stddef.h>
#include <cuda_runtime_api.h>
#include <cuda.h>
#define C(x) printf("%s=%ld\n", #x, (long)(x))
int main(void) {
    C(CUDART_VERSION); C(CUDA_VERSION);
    C(cudaSuccess); C(cudaErrorInvalidValue); C(cudaErrorMemoryAllocation); C(cudaErrorInitializationError);
    C(cudaErrorInsufficientDriver); C(cudaErrorNoDevice); C(cudaErrorInvalidDevice); C(cudaErrorLaunchFailure);
    C(cudaErrorIllegalAddress);
    C(cudaMemcpyHostToHost); C(cudaMemcpyHostToDevice); C(cudaMemcpyDeviceToHost); C(cudaMemcpyDeviceToDevice); C(cudaMemcpyDefault);
    C(cudaStreamDefault); C(cudaStreamNonBlocking); C(cudaEventDefault); C(cudaEventDisableTiming);
    C(cudaDevAttrMultiProcessorCount); C(cudaDevAttrComputeCapabilityMajor); C(cudaDevAttrComputeCapabilityMinor);
    C(cudaDevAttrMaxSharedMemoryPerBlock); C(cudaDevAttrClockRate); C(cudaDevAttrMemoryClockRate);
    C(sizeof(struct cudaDeviceProp)); C(offsetof(struct cudaDeviceProp, name)); C(offsetof(struct cudaDeviceProp, totalGlobalMem));
    C(offsetof(struct cudaDeviceProp, major)); C(offsetof(struct cudaDeviceProp, minor));
    C(offsetof(struct cudaDeviceProp, multiProcessorCount));
    C(sizeof(struct cudaFuncAttributes)); C(sizeof(dim3));
    C(sizeof(cudaError_t)); C(sizeof(enum cudaMemcpyKind));
    return 0;
}
