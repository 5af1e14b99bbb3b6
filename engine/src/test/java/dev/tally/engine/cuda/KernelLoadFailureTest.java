package dev.tally.engine.cuda;

import org.junit.jupiter.api.Test;

import java.util.Properties;

import static org.junit.jupiter.api.Assertions.*;

/** The message when the driver refuses the fatbin: which nvcc built it, which CUDA the driver supports, what to do. */
class KernelLoadFailureTest {

    private static Properties build(String nvcc) {
        Properties p = new Properties();
        p.setProperty("nvcc", nvcc);
        p.setProperty("archs", "sm_80,sm_90,compute_90");
        return p;
    }

    @Test void aCuda12DriverWithKernelsFromNvcc13IsToldToRebuildWithACuda12Nvcc() {
        String msg = CudaKernels.loadFailure("cudaLibraryLoadData(tally_kernels.fatbin) failed: cudaErrorUnsupportedPtxVersion",
                build("13.0"), 12040);
        assertTrue(msg.contains("built by nvcc 13.0 for sm_80,sm_90,compute_90"), msg);
        assertTrue(msg.contains("the driver supports CUDA 12.4"), msg);
        assertTrue(msg.contains("rebuild native/ with a CUDA 12 nvcc"), msg);
        assertTrue(msg.contains("cudaErrorUnsupportedPtxVersion"), msg);
    }

    @Test void aNewEnoughDriverPointsAtTheArchitecture() {
        String msg = CudaKernels.loadFailure("failed: cudaErrorNoKernelImageForDevice", build("13.0"), 13000);
        assertTrue(msg.contains("the driver supports CUDA 13.0") && msg.contains("architecture"), msg);
        assertFalse(msg.contains("rebuild"), msg);
    }
}
