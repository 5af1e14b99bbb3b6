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
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Finds the CUDA 13 libraries and binds them for the generated bindings. Search order, per library: the override
 * ({@code -Dtally.cuda.libdir} or {@code TALLY_CUDA_LIBDIR}, path-separated), LD_LIBRARY_PATH, /usr/local/cuda/lib64,
 * Python wheel folders (site-packages/nvidia/cu13/lib and nvidia/*&#47;lib under /opt/torch/.venv, $VIRTUAL_ENV,
 * $CONDA_PREFIX, ~/.local), then the plain SONAME through the system loader. A missing library gives one message that
 * lists every folder searched.
 */
public final class CudaLibraries {

    /** One library: the key the bindings use (null for libraries only preloaded for others' sake) and its SONAME. */
    record Lib(String key, String soname, boolean required) {}

    /** In load order: dependencies are preloaded by full path so their SONAMEs resolve for the libraries needing them. */
    static final List<Lib> LIBS = List.of(
            new Lib(null, "libcuda.so.1", true), // the driver: cudart loads it by SONAME
            new Lib(cuda_runtime_api_h.LIBRARY, "libcudart.so.13", true),
            new Lib(null, "libcublasLt.so.13", false),
            new Lib(cublas_api_h.LIBRARY, "libcublas.so.13", true),
            new Lib(null, "libnvJitLink.so.13", false),
            new Lib(null, "libcusparse.so.12", false),
            new Lib(cusolverDn_h.LIBRARY, "libcusolver.so.12", true));

    private static volatile Located bound;

    private CudaLibraries() {}

    /** Where each library was found (a path, or the bare SONAME when the system loader resolved it). */
    public record Located(Map<String, String> paths, List<Path> searched) {}

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

    /** Locates, loads and binds every library once per JVM, or throws one message naming what is missing and where it looked. */
    static synchronized Located bind() {
        if (bound != null) return bound;
        List<Path> dirs = searchPath(System::getenv, System::getProperty, defaultPythonRoots());
        Map<String, String> paths = new java.util.LinkedHashMap<>();
        List<String> missing = new ArrayList<>();
        Arena forever = Arena.global();
        for (Lib lib : LIBS) {
            Optional<Path> file = find(lib.soname(), dirs);
            SymbolLookup lookup = null;
            try {
                lookup = file.isPresent()
                        ? SymbolLookup.libraryLookup(file.get(), forever)
                        : SymbolLookup.libraryLookup(lib.soname(), forever); // the system loader's own search
                paths.put(lib.soname(), file.map(Path::toString).orElse(lib.soname() + " (system loader)"));
            } catch (IllegalArgumentException e) {
                if (lib.required()) missing.add(lib.soname() + (file.isPresent() ? " (found at " + file.get() + " but it failed to load: "
                        + e.getMessage() + ")" : ""));
            }
            if (lookup != null && lib.key() != null) Libraries.bind(lib.key(), lookup);
        }
        if (!missing.isEmpty()) {
            throw new IllegalStateException(unavailableMessage(missing, dirs));
        }
        bound = new Located(Map.copyOf(paths), dirs);
        return bound;
    }

    static String unavailableMessage(List<String> missing, List<Path> dirs) {
        StringBuilder sb = new StringBuilder("CUDA libraries not found: ").append(String.join(", ", missing));
        sb.append("; searched ");
        if (dirs.isEmpty()) sb.append("(no folders)");
        for (int i = 0; i < dirs.size(); i++) sb.append(i == 0 ? "" : ", ").append(dirs.get(i));
        sb.append(" and the system loader path. Set -Dtally.cuda.libdir or TALLY_CUDA_LIBDIR to the folder holding them")
                .append(" (libcuda.so.1 comes with the NVIDIA driver).");
        return sb.toString();
    }
}
