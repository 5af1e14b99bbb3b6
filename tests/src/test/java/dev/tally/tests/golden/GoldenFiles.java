package dev.tally.tests.golden;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The golden files to replay: every *.safetensors bundled under test resources {@code golden/} and its subfolders, plus
 * every one in (and under) the folder named by the system property {@code tally.golden.dir} (set by Maven from -Dtally.golden.dir or the
 * TALLY_GOLDEN_DIR environment variable), so new reference trajectories need no code.
 */
public final class GoldenFiles {
    private GoldenFiles() {}

    public static List<Path> all() {
        List<Path> out = new ArrayList<>();
        try {
            var url = GoldenFiles.class.getClassLoader().getResource("golden");
            if (url == null) throw new IllegalStateException("test resources folder golden/ is missing");
            out.addAll(list(Path.of(url.toURI())));
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        String extra = System.getProperty("tally.golden.dir", "");
        if (!extra.isBlank() && !extra.startsWith("${")) {
            Path dir = Path.of(extra);
            if (!Files.isDirectory(dir)) throw new IllegalStateException("tally.golden.dir=" + extra + " is not a folder");
            out.addAll(list(dir));
        }
        return out;
    }

    private static List<Path> list(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) { // subfolders too (weight_quant/ keeps a newer kind apart)
            return s.filter(p -> Files.isRegularFile(p) && p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new IllegalStateException("cannot list " + dir, e);
        }
    }
}
