/* Subset of cuSOLVER 12 (cusolverDn.h, CUDA 13.0) that Tally binds: dense SVD (gesvd, gesvdj) with workspace queries.
   Headers are not installed here: prototypes and enum values written from the cuSOLVER documentation
   (docs.nvidia.com/cuda/cusolver, 13.0). Library: libcusolver.so.12 (needs cuBLAS, cuSPARSE, nvJitLink) */
#define CUSOLVER_STATUS_SUCCESS 0
#define CUSOLVER_STATUS_NOT_INITIALIZED 1
#define CUSOLVER_STATUS_ALLOC_FAILED 2
#define CUSOLVER_STATUS_INVALID_VALUE 3
#define CUSOLVER_STATUS_ARCH_MISMATCH 4
#define CUSOLVER_STATUS_EXECUTION_FAILED 6
#define CUSOLVER_STATUS_INTERNAL_ERROR 7
#define CUSOLVER_STATUS_NOT_SUPPORTED 9
#define CUSOLVER_EIG_MODE_NOVECTOR 0
#define CUSOLVER_EIG_MODE_VECTOR 1
cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle);
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle);
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t streamId);
cusolverStatus_t cusolverDnSgesvd_bufferSize(cusolverDnHandle_t handle, int m, int n, int *lwork);
cusolverStatus_t cusolverDnSgesvd(cusolverDnHandle_t handle, signed char jobu, signed char jobvt, int m, int n, float *A, int lda, float *S, float *U, int ldu, float *VT, int ldvt, float *work, int lwork, float *rwork, int *devInfo);
cusolverStatus_t cusolverDnCreateGesvdjInfo(gesvdjInfo_t *info);
cusolverStatus_t cusolverDnDestroyGesvdjInfo(gesvdjInfo_t info);
cusolverStatus_t cusolverDnXgesvdjSetTolerance(gesvdjInfo_t info, double tolerance);
cusolverStatus_t cusolverDnXgesvdjSetMaxSweeps(gesvdjInfo_t info, int max_sweeps);
cusolverStatus_t cusolverDnSgesvdj_bufferSize(cusolverDnHandle_t handle, cusolverEigMode_t jobz, int econ, int m, int n, const float *A, int lda, const float *S, const float *U, int ldu, const float *V, int ldv, int *lwork, gesvdjInfo_t params);
cusolverStatus_t cusolverDnSgesvdj(cusolverDnHandle_t handle, cusolverEigMode_t jobz, int econ, int m, int n, float *A, int lda, float *S, float *U, int ldu, float *V, int ldv, float *work, int lwork, int *info, gesvdjInfo_t params);
