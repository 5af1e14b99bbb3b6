package dev.tally.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@code train --init-from DIR}: the folder's config, checked and written next to the run so {@code --resume} finds it. */
final class InitFrom {
    private InitFrom() {}

    /** Validates DIR's config.json (unsupported architectures throw) and writes it as {@code out/model.json}. */
    static Path modelFile(Path dir, Path out) throws IOException {
        var config = HfLlama.config(dir);
        HfLlama.weightFiles(dir); // fail before planning if there are no weights
        Files.createDirectories(out);
        Path file = out.resolve("model.json");
        Files.writeString(file, HfLlama.tallyConfigJson(config));
        return file.toAbsolutePath();
    }
}
