package dev.tally.engine.cuda;

/** A failed CUDA, cuBLAS or cuSOLVER call, named with the call and the library's error name (cudaErrorIllegalAddress…). */
public final class CudaException extends RuntimeException {
    private final String call;
    private final String errorName;

    public CudaException(String call, String errorName, String detail) {
        super(call + " failed: " + errorName + (detail == null || detail.isBlank() ? "" : " (" + detail + ")"));
        this.call = call;
        this.errorName = errorName;
    }

    public String call() { return call; }
    public String errorName() { return errorName; }
}
