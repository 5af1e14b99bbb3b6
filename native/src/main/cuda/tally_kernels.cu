// The one translation unit nvcc compiles into tally_kernels.fatbin (sm_80, sm_90 SASS + compute_90 PTX): every
// concern's file, each kernel an extern "C" entry point the host looks up by name.
#include "elementwise.cu"
#include "reduce.cu"
#include "norm.cu"
#include "softmax.cu"
#include "rope.cu"
#include "embedding.cu"
#include "sort.cu"
#include "random.cu"
#include "quant.cu"
#include "linalg.cu"
