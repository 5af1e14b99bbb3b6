package dev.tally.nativekernels;

import java.io.IOException;
import java.io.InputStream;

/** Where the compiled kernels live inside the tally-native jar (written by native/build-kernels.sh). */
public final class KernelResources {
    private KernelResources() {}

    /** The fatbin: SASS for sm_80 and sm_90, PTX for compute_90. Absent when the jar was built without nvcc. */
    public static final String FATBIN = "/dev/tally/nativekernels/tally_kernels.fatbin";

    /** Every extern "C" entry point in the fatbin, one per line. */
    public static final String KERNEL_LIST = "/dev/tally/nativekernels/tally_kernels.list";

    /** nvcc version, target architectures, kernel count. */
    public static final String BUILD_INFO = "/dev/tally/nativekernels/tally_kernels.properties";

    /** Magic number at the start of every fatbin (little-endian 0xBA55ED50). */
    public static final int FATBIN_MAGIC = 0xBA55ED50;

    /**
     * The bytes of one of the resources above, or null when the jar lacks it. Read here, inside this module, because a
     * named module's resources are encapsulated: the engine could not open them through {@code getResourceAsStream}.
     */
    public static byte[] read(String name) throws IOException {
        try (InputStream in = KernelResources.class.getResourceAsStream(name)) {
            return in == null ? null : in.readAllBytes();
        }
    }
}
