package dev.tally.tests.api;

import org.junit.jupiter.api.Test;

import javax.tools.DiagnosticCollector;
import javax.tools.JavaFileObject;
import javax.tools.ToolProvider;
import java.io.IOException;
import java.io.InputStream;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Holds Tally's public API to what the README states: which packages each module exports (read from the compiled
 * module descriptors, not from the sources), every public type in them (against the checked-in list
 * {@code public-api.txt}), no test hook among their public methods, and a consumer that reaches for a backend's
 * internals failing to compile.
 */
class PublicApiTest {
    /** Unqualified exports per module; qualified ones (bindings and kernels to the engine) are checked separately. */
    private static final Map<String, Set<String>> EXPORTS = Map.of(
            "dev.tally.jextract", Set.of(),
            "dev.tally.kernels", Set.of(),
            "dev.tally.engine", Set.of("dev.tally.engine", "dev.tally.engine.io", "dev.tally.engine.plan", "dev.tally.engine.profile"),
            "dev.tally.autograd", Set.of("dev.tally.autograd"),
            "dev.tally.models", Set.of("dev.tally.models.data", "dev.tally.models.llama", "dev.tally.models.loss",
                    "dev.tally.models.train"),
            "dev.tally.optim", Set.of("dev.tally.optim"));

    /** Methods that exist for tests or for the backends and must not be public API. */
    private static final Set<String> TEST_HOOKS = Set.of("withProjections", "lastStats", "fireGradReady");

    private static Map<String, ModuleReference> tallyModules() {
        Path[] entries = Stream.of(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .map(Path::of).filter(Files::exists).toArray(Path[]::new);
        Map<String, ModuleReference> found = new TreeMap<>();
        for (Path p : entries) {
            // One entry at a time: the test class path also holds automatic modules whose names may clash.
            try {
                ModuleFinder.of(p).findAll().stream()
                        .filter(r -> !r.descriptor().isAutomatic() && r.descriptor().name().startsWith("dev.tally."))
                        .forEach(r -> found.put(r.descriptor().name(), r));
            } catch (RuntimeException notAModule) {
                // test-jars and other entries without a usable descriptor
            }
        }
        return found;
    }

    @Test
    void eachModuleExportsExactlyItsApiPackages() {
        Map<String, ModuleReference> modules = tallyModules();
        assertEquals(EXPORTS.keySet(), modules.keySet(), "Tally modules on the test class path");
        for (var e : EXPORTS.entrySet()) {
            ModuleDescriptor d = modules.get(e.getKey()).descriptor();
            Set<String> open = d.exports().stream().filter(x -> !x.isQualified()).map(ModuleDescriptor.Exports::source)
                    .collect(Collectors.toSet());
            assertEquals(e.getValue(), open, "unqualified exports of " + d.name());
            assertTrue(d.opens().isEmpty(), d.name() + " opens packages: " + d.opens());
        }
        for (String internal : List.of("dev.tally.jextract", "dev.tally.kernels")) {
            for (ModuleDescriptor.Exports x : modules.get(internal).descriptor().exports()) {
                assertEquals(Set.of("dev.tally.engine"), x.targets(), internal + " exports " + x.source() + " beyond the engine");
            }
        }
        Set<String> engineQualified = modules.get("dev.tally.engine").descriptor().exports().stream()
                .filter(ModuleDescriptor.Exports::isQualified).map(x -> x.source() + " to " + x.targets())
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(Set.of("dev.tally.engine.cpu to [dev.tally.cli]"), engineQualified, "engine's qualified exports");
    }

    @Test
    void publicTypesAreTheStatedApi() throws IOException {
        TreeSet<String> actual = new TreeSet<>();
        List<String> hooks = new ArrayList<>();
        for (ModuleReference ref : tallyModules().values()) {
            Set<String> exported = EXPORTS.get(ref.descriptor().name());
            try (var reader = ref.open()) {
                for (String entry : reader.list().toList()) {
                    if (!entry.endsWith(".class") || entry.endsWith("module-info.class") || entry.endsWith("package-info.class")) continue;
                    String name = entry.substring(0, entry.length() - 6).replace('/', '.');
                    String pkg = name.substring(0, name.lastIndexOf('.'));
                    if (!exported.contains(pkg)) continue;
                    Class<?> c;
                    try {
                        c = Class.forName(name, false, getClass().getClassLoader());
                    } catch (ClassNotFoundException e) {
                        throw new AssertionError(name + " listed in " + ref.descriptor().name() + " but not loadable", e);
                    }
                    if (!isApi(c)) continue;
                    actual.add(c.getName());
                    for (Method m : c.getDeclaredMethods()) {
                        if (Modifier.isPublic(m.getModifiers()) && TEST_HOOKS.contains(m.getName())) hooks.add(c.getName() + "." + m.getName());
                    }
                }
            }
        }
        assertTrue(hooks.isEmpty(), "test hooks in the public API: " + hooks);
        TreeSet<String> expected;
        try (InputStream in = getClass().getResourceAsStream("public-api.txt")) {
            expected = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.startsWith("#")).collect(Collectors.toCollection(TreeSet::new));
        }
        if (!expected.equals(actual)) {
            Path out = Path.of("target", "public-api.actual.txt");
            Files.createDirectories(out.getParent());
            Files.writeString(out, String.join("\n", actual) + "\n");
            TreeSet<String> added = new TreeSet<>(actual), removed = new TreeSet<>(expected);
            added.removeAll(expected);
            removed.removeAll(actual);
            fail("the public API changed: added " + added + ", removed " + removed + ". If intended, state it in the README and"
                    + " copy " + out.toAbsolutePath() + " over tests/src/test/resources/dev/tally/tests/api/public-api.txt");
        }
    }

    /** A public type reachable by name: public itself and, for nested types, every enclosing type public. */
    private static boolean isApi(Class<?> c) {
        for (Class<?> k = c; k != null; k = k.getEnclosingClass()) {
            if (!Modifier.isPublic(k.getModifiers()) || k.isAnonymousClass() || k.isLocalClass()) return false;
        }
        return true;
    }

    @Test
    void aConsumerCannotReachTheBackendsInternals() throws IOException {
        var javac = ToolProvider.getSystemJavaCompiler();
        Path dir = Files.createTempDirectory("tally-consumer");
        Path src = dir.resolve("src"), classes = dir.resolve("classes");
        Files.createDirectories(src.resolve("c"));
        Files.createDirectories(classes);
        Files.writeString(src.resolve("module-info.java"), "module c { requires dev.tally.optim; requires dev.tally.models; }");
        Files.writeString(src.resolve("c/Uses.java"), """
                package c;
                class Uses {
                    dev.tally.engine.Tensor fine;                 // exported
                    dev.tally.engine.cpu.CpuOps cpu;              // the CPU backend: not exported
                    dev.tally.jextract.cuda_runtime_api_h cuda;   // the bindings: exported to the engine only
                }
                """);
        String modulePath = tallyModules().values().stream().map(r -> Path.of(r.location().orElseThrow()).toString())
                .collect(Collectors.joining(java.io.File.pathSeparator));
        // jtokkit, the models module's tokenizer dependency, is an automatic module found by file name.
        String jtokkit = Stream.of(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(p -> p.contains("jtokkit")).findFirst().orElseThrow(() -> new AssertionError("jtokkit not on the class path"));
        var diagnostics = new DiagnosticCollector<JavaFileObject>();
        try (var files = javac.getStandardFileManager(diagnostics, null, StandardCharsets.UTF_8)) {
            boolean ok = javac.getTask(null, files, diagnostics,
                    List.of("--module-path", modulePath + java.io.File.pathSeparator + jtokkit, "-d", classes.toString(),
                            "--add-modules", "jdk.incubator.vector", "-Xlint:-incubating"),
                    null, files.getJavaFileObjects(src.resolve("module-info.java"), src.resolve("c/Uses.java"))).call();
            assertFalse(ok, "a consumer compiled against non-exported packages");
        }
        String errors = diagnostics.getDiagnostics().stream().filter(d -> d.getKind() == javax.tools.Diagnostic.Kind.ERROR)
                .map(d -> d.getLineNumber() + ": " + d.getMessage(null)).collect(Collectors.joining("\n"));
        assertTrue(errors.contains("dev.tally.engine.cpu") && errors.contains("is not visible"), errors);
        assertTrue(errors.contains("dev.tally.jextract") && errors.contains("is not visible"), errors);
        assertFalse(errors.lines().anyMatch(l -> l.startsWith("3:")), "the exported Tensor must resolve:\n" + errors);
    }
}
