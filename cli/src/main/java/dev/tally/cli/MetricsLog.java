package dev.tally.cli;

import dev.tally.engine.io.Json;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A run's metrics.jsonl, one JSON object per line, each with its 1-based "step". A fresh run replaces the folder's
 * previous file only when it writes its first row, so a run that fails before its first step leaves the previous run's
 * metrics as they were. A resumed run keeps the rows up to the checkpoint's step, drops later ones (written after the
 * checkpoint by a run that then died; the resumed run writes them again) and any torn last line, then appends.
 */
final class MetricsLog implements AutoCloseable {
    private final Path path;
    private final boolean append;
    private final List<Map<String, Object>> kept;
    private BufferedWriter writer;
    private boolean wrote;

    private MetricsLog(Path path, boolean append, List<Map<String, Object>> kept) {
        this.path = path;
        this.append = append;
        this.kept = kept;
    }

    /** A new run's log; nothing on disk changes until the first row. */
    static MetricsLog fresh(Path path) {
        return new MetricsLog(path, false, List.of());
    }

    /** A resumed run's log: rows after {@code step} are dropped now (atomically rewritten), new rows are appended. */
    static MetricsLog resumed(Path path, long step) throws IOException {
        List<Map<String, Object>> kept = new ArrayList<>();
        if (!Files.exists(path)) return new MetricsLog(path, true, kept);
        List<String> lines = Files.readAllLines(path);
        List<String> keep = new ArrayList<>();
        for (String line : lines) {
            Map<String, Object> row;
            try {
                row = Json.parseObject(line);
            } catch (IllegalArgumentException torn) {
                continue; // a line cut short when a run was killed mid-write
            }
            if (row.get("step") instanceof Number n && n.longValue() <= step) {
                keep.add(line);
                kept.add(row);
            }
        }
        if (keep.size() != lines.size()) {
            Path tmp = path.resolveSibling("." + path.getFileName() + ".tmp");
            Files.write(tmp, keep);
            try {
                Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return new MetricsLog(path, true, kept);
    }

    /** Rows kept from before the resume (for the plots). */
    List<Map<String, Object>> kept() { return kept; }

    boolean wroteAny() { return wrote; }

    void write(Map<String, Object> row) throws IOException {
        if (writer == null) {
            writer = Files.newBufferedWriter(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
        }
        writer.write(Json.write(row));
        writer.newLine();
        wrote = true;
    }

    void flush() throws IOException {
        if (writer != null) writer.flush();
    }

    @Override public void close() throws IOException {
        if (writer != null) writer.close();
    }
}
