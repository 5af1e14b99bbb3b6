package dev.tally.engine.cuda;

import dev.tally.jextract.cublas_api_h;
import dev.tally.jextract.cuda_runtime_api_h;
import dev.tally.jextract.cusolverDn_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Return-code checks for the three libraries: every non-success code becomes a {@link CudaException} naming the call. */
final class Cuda {
    private Cuda() {}

    static String errorName(int rc) {
        return cstring(cuda_runtime_api_h.cudaGetErrorName(rc), "cudaError " + rc);
    }

    static String errorString(int rc) {
        return cstring(cuda_runtime_api_h.cudaGetErrorString(rc), "");
    }

    private static String cstring(MemorySegment p, String fallback) {
        return p.equals(MemorySegment.NULL) ? fallback : p.reinterpret(1024).getString(0);
    }

    static void check(int rc, String call) {
        if (rc != cuda_runtime_api_h.cudaSuccess) throw new CudaException(call, errorName(rc), errorString(rc));
    }

    static void checkBlas(int status, String call) {
        if (status != cublas_api_h.CUBLAS_STATUS_SUCCESS) {
            String name;
            try {
                name = cstring(cublas_api_h.cublasGetStatusName(status), "CUBLAS_STATUS " + status);
            } catch (RuntimeException | LinkageError e) {
                name = "CUBLAS_STATUS " + status;
            }
            throw new CudaException(call, name, null);
        }
    }

    static void checkSolver(int status, String call) {
        if (status != cusolverDn_h.CUSOLVER_STATUS_SUCCESS) {
            String name = switch (status) {
                case cusolverDn_h.CUSOLVER_STATUS_NOT_INITIALIZED -> "CUSOLVER_STATUS_NOT_INITIALIZED";
                case cusolverDn_h.CUSOLVER_STATUS_ALLOC_FAILED -> "CUSOLVER_STATUS_ALLOC_FAILED";
                case cusolverDn_h.CUSOLVER_STATUS_INVALID_VALUE -> "CUSOLVER_STATUS_INVALID_VALUE";
                case cusolverDn_h.CUSOLVER_STATUS_ARCH_MISMATCH -> "CUSOLVER_STATUS_ARCH_MISMATCH";
                case cusolverDn_h.CUSOLVER_STATUS_EXECUTION_FAILED -> "CUSOLVER_STATUS_EXECUTION_FAILED";
                case cusolverDn_h.CUSOLVER_STATUS_INTERNAL_ERROR -> "CUSOLVER_STATUS_INTERNAL_ERROR";
                case cusolverDn_h.CUSOLVER_STATUS_NOT_SUPPORTED -> "CUSOLVER_STATUS_NOT_SUPPORTED";
                default -> "CUSOLVER_STATUS " + status;
            };
            throw new CudaException(call, name, null);
        }
    }

    /** (free, total) device bytes of the current device. */
    static long[] memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(ValueLayout.JAVA_LONG), total = a.allocate(ValueLayout.JAVA_LONG);
            check(cuda_runtime_api_h.cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new long[]{free.get(ValueLayout.JAVA_LONG, 0), total.get(ValueLayout.JAVA_LONG, 0)};
        }
    }

    /** Runs {@code call}, which writes one pointer through its out-parameter, and returns the pointer. */
    static MemorySegment outPointer(String name, java.util.function.ToIntFunction<MemorySegment> call) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(call.applyAsInt(p), name);
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    static int outInt(String name, java.util.function.ToIntFunction<MemorySegment> call) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.JAVA_INT);
            check(call.applyAsInt(p), name);
            return p.get(ValueLayout.JAVA_INT, 0);
        }
    }
}
