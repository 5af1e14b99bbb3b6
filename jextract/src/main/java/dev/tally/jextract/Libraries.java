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

    /**
     * Symbols a CUDA 12 header renames: cuda_runtime_api.h 12.x maps {@code cudaGetDeviceProperties} to
     * {@code cudaGetDeviceProperties_v2} (the plain export keeps the CUDA 11 struct), while CUDA 13 exports only the plain
     * name. The alias is taken where the library exports it.
     */
    static final Map<String, String> PREFERRED_ALIASES = Map.of("cudaGetDeviceProperties", "cudaGetDeviceProperties_v2");

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
        return l == null ? java.util.Optional.empty() : address(l, symbol);
    }

    static MethodHandle downcall(String key, String symbol, FunctionDescriptor descriptor) {
        SymbolLookup lookup = BOUND.get(key);
        if (lookup == null) {
            throw new IllegalStateException("native library '" + key + "' is not loaded (" + symbol
                    + " was called before the CUDA backend bound its libraries)");
        }
        MemorySegment address = address(lookup, symbol).orElseThrow(() -> new UnsatisfiedLinkError(
                "symbol " + symbol + " not found in the bound '" + key + "' library (version mismatch?)"));
        return Linker.nativeLinker().downcallHandle(address, descriptor);
    }

    /**
     * Where a binding's {@code symbol} resolves in {@code lookup}: the CUDA 12 alias where exported (see
     * {@link #PREFERRED_ALIASES}), then the name itself, then, for a {@code _v2} name (cublas_v2.h maps cublasCreate to
     * cublasCreate_v2), the plain name should a release export only that.
     */
    public static java.util.Optional<MemorySegment> address(SymbolLookup lookup, String symbol) {
        String alias = PREFERRED_ALIASES.get(symbol);
        java.util.Optional<MemorySegment> a = alias == null ? java.util.Optional.empty() : lookup.find(alias);
        if (a.isPresent()) return a;
        String plain = symbol.endsWith("_v2") ? symbol.substring(0, symbol.length() - 3) : symbol;
        return lookup.find(symbol).or(() -> lookup.find(plain));
    }

    /** The symbols of {@code symbols} that {@code lookup} cannot resolve (by the rules of {@link #address}). */
    public static java.util.List<String> missing(SymbolLookup lookup, java.util.List<String> symbols) {
        return symbols.stream().filter(s -> address(lookup, s).isEmpty()).toList();
    }
}
