package dev.tally.engine.cuda;

import dev.tally.jextract.Libraries;
import dev.tally.jextract.cublas_api_h;
import dev.tally.jextract.cuda_runtime_api_h;
import dev.tally.jextract.cusolverDn_h;

import java.io.File;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Finds the CUDA libraries and binds them for the generated bindings, as one consistent set: cudart, cuBLAS(Lt) and
 * cuSOLVER of one CUDA major version, all from one location: the first location, in search order, that holds a complete
 * set of CUDA 13 ({@code libcudart.so.13}, {@code libcublas.so.13}, {@code libcusolver.so.12}) or, failing that, of CUDA 12
 * ({@code libcudart.so.12}, {@code libcublas.so.12}, {@code libcusolver.so.11}, as a PyTorch cu12x install ships them).
 * Locations, in order: each folder of the override ({@code -Dtally.cuda.libdir} or {@code TALLY_CUDA_LIBDIR},
 * path-separated), each folder of LD_LIBRARY_PATH, /usr/local/cuda/lib64, then per Python environment (/opt/torch/.venv,
 * $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local) its site-packages/nvidia/cu13/lib and, as one location, all its
 * site-packages/nvidia/&#42;/lib (the cu12 wheels put each library in its own folder); last, the system loader by SONAME.
 * Each library is never taken from whichever folder first has it: a libcublas from one toolkit beside a libcudart from
 * another is how version mismatches crash. The driver (libcuda.so.1) is found on its own. A missing set gives one
 * message saying what each location lacked; a library missing a symbol the bindings need names it.
 */
public final class CudaLibraries {

    /** One library: the key the bindings use (null for libraries only preloaded for others' sake) and its SONAME. */
    record Lib(String key, String soname, boolean required) {}

    /** One CUDA major version's libraries, in load order (dependencies first, preloaded by full path). */
    record LibrarySet(int cuda, List<Lib> libs) {
        List<Lib> required() { return libs.stream().filter(Lib::required).toList(); }
        String soname(String key) {
            return libs.stream().filter(l -> key.equals(l.key())).findFirst().orElseThrow().soname();
        }
    }

    static final LibrarySet CUDA_13 = new LibrarySet(13, List.of(
            new Lib(cuda_runtime_api_h.LIBRARY, "libcudart.so.13", true),
            new Lib(null, "libcublasLt.so.13", true),
            new Lib(cublas_api_h.LIBRARY, "libcublas.so.13", true),
            new Lib(null, "libnvJitLink.so.13", false),
            new Lib(null, "libcusparse.so.12", false),
            new Lib(cusolverDn_h.LIBRARY, "libcusolver.so.12", true)));

    static final LibrarySet CUDA_12 = new LibrarySet(12, List.of(
            new Lib(cuda_runtime_api_h.LIBRARY, "libcudart.so.12", true),
            new Lib(null, "libcublasLt.so.12", true),
            new Lib(cublas_api_h.LIBRARY, "libcublas.so.12", true),
            new Lib(null, "libnvJitLink.so.12", false),
            new Lib(null, "libcusparse.so.12", false),
            new Lib(cusolverDn_h.LIBRARY, "libcusolver.so.11", true)));

    /** Preferred first. */
    static final List<LibrarySet> SETS = List.of(CUDA_13, CUDA_12);

    static final String DRIVER = "libcuda.so.1";

    /** A place a whole set may come from: one folder, or the folders of one Python environment's nvidia wheels. */
    record Location(String name, List<Path> dirs) {
        static Location of(Path dir) { return new Location(dir.toString(), List.of(dir)); }
    }

    /** The set chosen and where each of its libraries is (absent ones were optional). */
    record Selection(Location location, LibrarySet set, Map<String, Path> files) {}

    private static volatile Located bound;

    private CudaLibraries() {}

    /** What was bound: the CUDA version of the set, where each library was found, and the folders searched. */
    public record Located(int cuda, Map<String, String> paths, List<Path> searched) {
        /** Where libcudart came from. */
        public String runtime() {
            return paths.getOrDefault("libcudart.so." + cuda, "libcudart");
        }
    }

    /** The folders searched, in order, for an environment and system properties given as functions (testable). */
    static List<Path> searchPath(Function<String, String> env, Function<String, String> props, List<Path> pythonRoots) {
        LinkedHashSet<Path> dirs = new LinkedHashSet<>();
        for (String override : new String[]{props.apply("tally.cuda.libdir"), env.apply("TALLY_CUDA_LIBDIR")}) {
            addAll(dirs, override);
        }
        addAll(dirs, env.apply("LD_LIBRARY_PATH"));
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        List<Path> roots = new ArrayList<>(pythonRoots);
        for (String v : new String[]{env.apply("VIRTUAL_ENV"), env.apply("CONDA_PREFIX")}) {
            if (v != null && !v.isBlank()) roots.add(Path.of(v));
        }
        for (Path root : roots) dirs.addAll(wheelDirs(root));
        return List.copyOf(dirs);
    }

    static List<Path> defaultPythonRoots() {
        return List.of(Path.of("/opt/torch/.venv"), Path.of(System.getProperty("user.home"), ".local"));
    }

    private static void addAll(LinkedHashSet<Path> dirs, String list) {
        if (list == null || list.isBlank() || list.startsWith("${")) return;
        for (String s : list.split(File.pathSeparator)) if (!s.isBlank()) dirs.add(Path.of(s.trim()));
    }

    /** root/lib/python3.x/site-packages/nvidia/cu13/lib, then every nvidia/<component>/lib. */
    static List<Path> wheelDirs(Path root) {
        List<Path> out = new ArrayList<>();
        for (Path sp : children(root.resolve("lib"), "python3*")) {
            Path nvidia = sp.resolve("site-packages").resolve("nvidia");
            if (!Files.isDirectory(nvidia)) continue;
            Path cu13 = nvidia.resolve("cu13").resolve("lib");
            if (Files.isDirectory(cu13)) out.add(cu13);
            for (Path comp : children(nvidia, "*")) {
                Path lib = comp.resolve("lib");
                if (Files.isDirectory(lib) && !lib.equals(cu13)) out.add(lib);
            }
        }
        return out;
    }

    private static List<Path> children(Path dir, String glob) {
        if (!Files.isDirectory(dir)) return List.of();
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, glob)) {
            for (Path p : ds) out.add(p);
        } catch (IOException e) {
            return List.of();
        }
        out.sort(null);
        return out;
    }

    /** The first folder holding {@code soname}, if any. */
    static Optional<Path> find(String soname, List<Path> dirs) {
        for (Path d : dirs) {
            Path f = d.resolve(soname);
            if (Files.isRegularFile(f)) return Optional.of(f);
        }
        return Optional.empty();
    }

    /** The locations a set may come from, in order (see the class comment). */
    static List<Location> locations(Function<String, String> env, Function<String, String> props, List<Path> pythonRoots) {
        LinkedHashSet<Path> single = new LinkedHashSet<>();
        for (String override : new String[]{props.apply("tally.cuda.libdir"), env.apply("TALLY_CUDA_LIBDIR")}) addAll(single, override);
        addAll(single, env.apply("LD_LIBRARY_PATH"));
        single.add(Path.of("/usr/local/cuda/lib64"));
        List<Location> out = new ArrayList<>();
        for (Path d : single) out.add(Location.of(d));
        for (Path root : pythonRoots(env, pythonRoots)) {
            List<Path> wheels = wheelDirs(root);
            for (Path d : wheels) if (d.endsWith(Path.of("cu13", "lib"))) out.add(Location.of(d));
            List<Path> split = wheels.stream().filter(d -> !d.endsWith(Path.of("cu13", "lib"))).toList();
            if (!split.isEmpty()) out.add(new Location(split.getFirst().getParent().getParent() + "/*/lib", split));
        }
        return out;
    }

    private static List<Path> pythonRoots(Function<String, String> env, List<Path> pythonRoots) {
        List<Path> roots = new ArrayList<>(pythonRoots);
        for (String v : new String[]{env.apply("VIRTUAL_ENV"), env.apply("CONDA_PREFIX")}) {
            if (v != null && !v.isBlank()) roots.add(Path.of(v));
        }
        return roots;
    }

    /** The first location holding every required library of a set (CUDA 13 preferred within a location), if any. */
    static Optional<Selection> select(List<Location> locations) {
        for (Location loc : locations) {
            for (LibrarySet set : SETS) {
                Map<String, Path> files = new LinkedHashMap<>();
                boolean complete = true;
                for (Lib lib : set.libs()) {
                    Optional<Path> f = find(lib.soname(), loc.dirs());
                    if (f.isPresent()) files.put(lib.soname(), f.get());
                    else if (lib.required()) complete = false;
                }
                if (complete) return Optional.of(new Selection(loc, set, Map.copyOf(files)));
            }
        }
        return Optional.empty();
    }

    /** Per location, what it lacked of the nearest set (the one it holds most of); locations holding nothing are summed up. */
    static String unavailableMessage(List<Location> locations, String systemLoader) {
        StringBuilder sb = new StringBuilder("CUDA libraries not found: no location holds a complete set of CUDA 13 (")
                .append(names(CUDA_13)).append(") or CUDA 12 (").append(names(CUDA_12)).append(")");
        List<String> empty = new ArrayList<>();
        for (Location loc : locations) {
            LibrarySet best = null;
            List<String> lacking = null;
            int bestHeld = 0;
            for (LibrarySet set : SETS) {
                List<String> miss = new ArrayList<>();
                int held = 0;
                for (Lib lib : set.required()) {
                    if (find(lib.soname(), loc.dirs()).isPresent()) held++;
                    else miss.add(lib.soname());
                }
                if (held > bestHeld) { best = set; bestHeld = held; lacking = miss; }
            }
            if (best == null) empty.add(loc.name());
            else sb.append("; ").append(loc.name()).append(" has CUDA ").append(best.cuda()).append(" libraries but lacks ")
                    .append(String.join(", ", lacking));
        }
        if (!empty.isEmpty()) sb.append("; searched ").append(String.join(", ", empty)).append(" (none there)");
        sb.append("; system loader: ").append(systemLoader)
                .append(". Set -Dtally.cuda.libdir or TALLY_CUDA_LIBDIR to the folder holding them (libcuda.so.1 comes with the NVIDIA driver).");
        return sb.toString();
    }

    private static String names(LibrarySet set) {
        return String.join(", ", set.required().stream().map(Lib::soname).toList());
    }

    /** The bindings' symbols per library key: each must resolve in the library bound to it. */
    static List<String> symbolsOf(String key) {
        if (key.equals(cuda_runtime_api_h.LIBRARY)) return cuda_runtime_api_h.SYMBOLS;
        if (key.equals(cublas_api_h.LIBRARY)) return cublas_api_h.SYMBOLS;
        return cusolverDn_h.SYMBOLS;
    }

    /** Locates, loads and binds one consistent set once per JVM, or throws one message naming what is missing and where. */
    static synchronized Located bind() {
        if (bound != null) return bound;
        List<Path> dirs = searchPath(System::getenv, System::getProperty, defaultPythonRoots());
        List<Location> locations = locations(System::getenv, System::getProperty, defaultPythonRoots());
        Arena forever = Arena.global();

        Map<String, String> paths = new LinkedHashMap<>();
        Optional<Path> driverFile = find(DRIVER, dirs);
        try { // the driver: cudart loads it by SONAME, so a copy found in a folder is preloaded for it
            if (driverFile.isPresent()) SymbolLookup.libraryLookup(driverFile.get(), forever);
            else SymbolLookup.libraryLookup(DRIVER, forever);
            paths.put(DRIVER, driverFile.map(Path::toString).orElse(DRIVER + " (system loader)"));
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("CUDA driver library " + DRIVER + " not found" + driverFile.map(f -> " (found at " + f
                    + " but it failed to load: " + e.getMessage() + ")").orElse(" in " + dirs + " nor by the system loader")
                    + ": install the NVIDIA driver, or set -Dtally.cuda.libdir to the folder holding it");
        }

        Optional<Selection> selection = select(locations);
        Map<String, SymbolLookup> lookups = new LinkedHashMap<>();
        LibrarySet set;
        if (selection.isPresent()) {
            set = selection.get().set();
            for (Lib lib : set.libs()) {
                Path f = selection.get().files().get(lib.soname());
                if (f == null) continue; // optional and absent: its dependents find it by their own search
                SymbolLookup l;
                try {
                    l = SymbolLookup.libraryLookup(f, forever);
                } catch (IllegalArgumentException e) {
                    throw new IllegalStateException("CUDA " + set.cuda() + " library " + f + " failed to load: " + e.getMessage(), e);
                }
                paths.put(lib.soname(), f.toString());
                if (lib.key() != null) lookups.put(lib.key(), l);
            }
        } else { // the system loader's own search (ld.so.cache, RUNPATH): a set it loads completely
            set = null;
            List<String> tried = new ArrayList<>();
            for (LibrarySet candidate : SETS) {
                Map<String, SymbolLookup> found = new LinkedHashMap<>();
                List<String> missing = new ArrayList<>();
                for (Lib lib : candidate.libs()) {
                    try {
                        SymbolLookup l = SymbolLookup.libraryLookup(lib.soname(), forever);
                        if (lib.key() != null) found.put(lib.key(), l);
                    } catch (IllegalArgumentException e) {
                        if (lib.required()) missing.add(lib.soname());
                    }
                }
                if (missing.isEmpty()) {
                    set = candidate;
                    lookups = found;
                    for (Lib lib : candidate.required()) paths.put(lib.soname(), lib.soname() + " (system loader)");
                    break;
                }
                tried.add("CUDA " + candidate.cuda() + " lacks " + String.join(", ", missing));
            }
            if (set == null) throw new IllegalStateException(unavailableMessage(locations, String.join("; ", tried)));
        }
        // every symbol the bindings use must resolve now, not at some later first call
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, SymbolLookup> e : lookups.entrySet()) {
            List<String> missing = Libraries.missing(e.getValue(), symbolsOf(e.getKey()));
            if (!missing.isEmpty()) {
                problems.add(paths.get(set.soname(e.getKey())) + " lacks " + String.join(", ", missing));
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalStateException("CUDA " + set.cuda() + " libraries found but they lack symbols Tally binds: "
                    + String.join("; ", problems) + " (CUDA 12.0 or newer is needed)");
        }
        lookups.forEach(Libraries::bind);
        bound = new Located(set.cuda(), Map.copyOf(paths), dirs);
        return bound;
    }
}
