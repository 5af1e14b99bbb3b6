package dev.tally.tests.golden;

import dev.tally.engine.io.SafeTensors;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;

/** One dynamic test per golden file, dispatched on its metadata kind. */
class GoldenReplayTest {
    @TestFactory
    Stream<DynamicTest> replayEveryGoldenFile() {
        List<java.nio.file.Path> files = GoldenFiles.all();
        assertFalse(files.isEmpty(), "no golden files found");
        return files.stream().map(path -> DynamicTest.dynamicTest(path.getParent().getFileName() + "/" + path.getFileName(), () -> {
            try (SafeTensors.File f = SafeTensors.open(path)) {
                String kind = f.metadata().get("kind");
                if (kind == null) throw new AssertionError(path + " has no metadata 'kind'");
                GoldenCheckers.forKind(kind).check(f);
            }
        }));
    }
}
