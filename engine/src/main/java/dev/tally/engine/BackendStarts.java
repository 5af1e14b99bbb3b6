package dev.tally.engine;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Starts each device's backend at most once. A failed start is remembered and the same failure is thrown again on
 * every later request: starting CUDA binds libraries and creates a context, which is slow and must not be retried by
 * every {@code cudaAvailable()} call (nor succeed half-way on a second try after the first one left state behind).
 */
final class BackendStarts {
    private final Function<Device, Backend> factory;
    private final Map<Device, Backend> started = new ConcurrentHashMap<>();
    private final Map<Device, RuntimeException> failed = new ConcurrentHashMap<>();

    BackendStarts(Function<Device, Backend> factory) {
        this.factory = factory;
    }

    /** The device's backend, started on first use; throws the first start's failure on this and every later call. */
    Backend get(Device device) {
        Backend b = started.get(device);
        if (b != null) return b;
        synchronized (this) {
            b = started.get(device);
            if (b != null) return b;
            RuntimeException failure = failed.get(device);
            if (failure != null) throw failure;
            try {
                b = factory.apply(device);
            } catch (RuntimeException e) {
                failed.put(device, e);
                throw e;
            } catch (LinkageError e) { // a library that loads but lacks a symbol: still a failed start, with its cause
                RuntimeException wrapped = new IllegalStateException("could not start the " + device + " backend: " + e, e);
                failed.put(device, wrapped);
                throw wrapped;
            }
            started.put(device, b);
            return b;
        }
    }

    /**
     * Puts {@code replacement} in front of the device's started backend until the returned handle is closed (the
     * profiler's wrapper); the device must have started.
     */
    AutoCloseable override(Device device, Function<Backend, Backend> replacement) {
        Backend plain = get(device);
        Backend wrapper = replacement.apply(plain);
        started.put(device, wrapper);
        return () -> started.replace(device, wrapper, plain);
    }

    /** Why the device's backend cannot start (starting it if never tried), or empty when it runs. */
    Optional<RuntimeException> failure(Device device) {
        try {
            get(device);
            return Optional.empty();
        } catch (RuntimeException e) {
            return Optional.of(e);
        }
    }
}
