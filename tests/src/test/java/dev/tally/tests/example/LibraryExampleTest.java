package dev.tally.tests.example;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.optim.Optimizers;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's library example, compiled and run so it cannot drift from the API. */
class LibraryExampleTest {
    @Test
    void readmeExampleTrainsAStep() throws Exception {
        // --- README example begins ---
        MemoryLedger ledger = new MemoryLedger();
        var settings = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, /*batch*/ 4, /*seq*/ 64,
                /*accumulation*/ 1, "cce", /*layerwise*/ false, Device.CPU, /*seed*/ 42, /*clip*/ 0);
        try (Trainer trainer = new Trainer(settings,
                params -> Optimizers.create("apollo_mini", Map.of("lr", 0.01), params), ledger)) {
            System.out.print(trainer.planReport());              // the memory this run will use, by category
            TextData data = TextData.load(TextData.BUNDLED, new Tokenizer.Bytes(), 0.05);
            long[][] batch = data.trainBatch(42, 0, 4, 64);       // inputs and next-token targets
            double loss = trainer.step(new long[][] {batch[0]}, new long[][] {batch[1]}, 1.0);
            System.out.printf("loss %.4f%n%s", loss, ledger.table());
            // --- README example ends ---
            assertTrue(loss > 4 && loss < 7, "first-step byte-level loss near ln 256: " + loss);
        }
    }
}
