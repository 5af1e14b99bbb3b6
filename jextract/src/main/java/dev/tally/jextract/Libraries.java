package dev.tally.jextract;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where each bound C library's symbols come from. jextract's own output hard-codes a library name; ours leaves finding
 * the library to the engine (which searches override, LD_LIBRARY_PATH, /usr/local/cuda and Python wheels), which binds
 * the lookup here. Handles are created on a function's first call, so loading the binding classes needs no CUDA.
 */
public final class Libraries {
    private static final Map<String, SymbolLookup> BOUND = new ConcurrentHashMap<>();

    private Libraries() {}

    /** Makes {@code lookup} the source of the symbols of library {@code key} ("cudart", "cublas", "cusolver"). */
    public static void bind(String key, SymbolLookup lookup) {
        BOUND.put(key, lookup);
    }

    public static boolean isBound(String key) {
        return BOUND.containsKey(key);
    }

    /** The address of {@code symbol} in library {@code key}, if bound and present. */
    public static java.util.Optional<MemorySegment> find(String key, String symbol) {
        SymbolLookup l = BOUND.get(key);
        return l == null ? java.util.Optional.empty() : l.find(symbol);
    }

    static MethodHandle downcall(String key, String symbol, FunctionDescriptor descriptor) {
        SymbolLookup lookup = BOUND.get(key);
        if (lookup == null) {
            throw new IllegalStateException("native library '" + key + "' is not loaded (" + symbol
                    + " was called before the CUDA backend bound its libraries)");
        }
        // cublas_v2.h maps cublasCreate to cublasCreate_v2; should a release export only the plain name, take that
        String plain = symbol.endsWith("_v2") ? symbol.substring(0, symbol.length() - 3) : symbol;
        MemorySegment address = lookup.find(symbol).or(() -> lookup.find(plain)).orElseThrow(() -> new UnsatisfiedLinkError(
                "symbol " + symbol + " not found in the bound '" + key + "' library (version mismatch?)"));
        return Linker.nativeLinker().downcallHandle(address, descriptor);
    }
}
