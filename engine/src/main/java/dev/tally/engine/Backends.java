package dev.tally.engine;

import dev.tally.engine.meta.MetaBackend;

import java.util.Optional;

/**
 * The backend of each device. CPU and META are always present; CUDA is loaded on first use and fails with one clear
 * message (where it looked for the libraries) when the machine has no GPU stack. A backend that fails to start is not
 * retried: the first failure is thrown again (see {@link BackendStarts}).
 */
public final class Backends {
    private static final BackendStarts STARTS = new BackendStarts(Backends::create);

    private Backends() {}

    public static Backend of(Device device) {
        return STARTS.get(device);
    }

    private static Backend create(Device device) {
        return switch (device) {
            case Device.Meta m -> new MetaBackend();
            case Device.Cpu c -> newInstance("dev.tally.engine.cpu.CpuBackend", device);
            case Device.Cuda c -> newInstance("dev.tally.engine.cuda.CudaBackend", device);
        };
    }

    private static Backend newInstance(String className, Device device) {
        try {
            Class<?> k = Class.forName(className);
            try {
                return (Backend) k.getConstructor(Device.class).newInstance(device);
            } catch (NoSuchMethodException e) {
                return (Backend) k.getConstructor().newInstance();
            }
        } catch (java.lang.reflect.InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) throw re;
            throw new IllegalStateException("could not start the " + device + " backend: " + cause, cause);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("no backend for " + device + " (" + className + " missing)", e);
        }
    }

    /**
     * Routes every op of {@code device} through a {@link dev.tally.engine.profile.ProfilingOps} booking into
     * {@code profile} until the returned handle is closed (for {@code tally bench --profile}). Memory is reserved by the
     * device's own backend either way, and each op still runs the device's own kernel, so results do not change.
     */
    public static AutoCloseable profile(Device device, dev.tally.engine.profile.OpProfile profile) {
        return STARTS.override(device, plain -> {
            Ops profiled = new dev.tally.engine.profile.ProfilingOps(plain.ops(), profile);
            return new Backend() {
                @Override public Device device() { return device; }
                @Override public Region reserve(long bytes, String arenaName) { return plain.reserve(bytes, arenaName); }
                @Override public Ops ops() { return profiled; }
                @Override public long availableBytes() { return plain.availableBytes(); }
                @Override public void reportRuntimeMemory(MemoryLedger ledger) { plain.reportRuntimeMemory(ledger); }
            };
        });
    }

    /** True when a CUDA device can be used on this machine (libraries, driver and at least one GPU). */
    public static boolean cudaAvailable() {
        return cudaProblem().isEmpty();
    }

    /** Why cuda:0 cannot be used (the exception its start threw, with its cause), or empty when it can. */
    public static Optional<RuntimeException> cudaProblem() {
        return STARTS.failure(Device.cuda(0));
    }

    /** Resolves a user's device string; "auto" means CUDA when available, else CPU (with a message on stderr). */
    public static Device resolve(String name) {
        if (name.trim().equalsIgnoreCase("auto")) {
            try {
                of(Device.cuda(0));
                return Device.cuda(0);
            } catch (RuntimeException | LinkageError e) {
                System.err.println("tally: no usable CUDA device (" + e.getMessage() + "); running on cpu");
                return Device.CPU;
            }
        }
        return Device.parse(name);
    }
}
