package dev.tally.engine;

/**
 * Where a tensor's bytes live. META holds shapes and bookings only (no memory), so a 7B run can be planned on a laptop;
 * CPU and CUDA run the same code path with real memory.
 */
public sealed interface Device permits Device.Cpu, Device.Cuda, Device.Meta {
    Device CPU = new Cpu();
    Device META = new Meta();

    static Device cuda(int ordinal) { return new Cuda(ordinal); }

    /** Parses "cpu", "meta", "cuda", "cuda:1". ("auto" is resolved by {@link Backends#resolve(String)}.) */
    static Device parse(String name) {
        String n = name.trim().toLowerCase(java.util.Locale.ROOT);
        if (n.equals("cpu")) return CPU;
        if (n.equals("meta")) return META;
        if (n.equals("cuda") || n.equals("gpu")) return cuda(0);
        if (n.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(n.substring(5)));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad device '" + name + "': expected cuda:<ordinal>");
            }
        }
        throw new IllegalArgumentException("unknown device '" + name + "' (expected cpu, cuda, cuda:N, meta or auto)");
    }

    /** True when the device holds real memory (CPU, CUDA). */
    default boolean hasMemory() { return !(this instanceof Meta); }

    record Cpu() implements Device {
        @Override public String toString() { return "cpu"; }
    }

    record Meta() implements Device {
        @Override public String toString() { return "meta"; }
    }

    record Cuda(int ordinal) implements Device {
        public Cuda {
            if (ordinal < 0) throw new IllegalArgumentException("negative CUDA ordinal " + ordinal);
        }
        @Override public String toString() { return "cuda:" + ordinal; }
    }
}
