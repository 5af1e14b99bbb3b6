package example.consumer;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.optim.Optimizers;

import java.util.Map;

/** Trains the tiny model for a few steps through Tally's public API and prints the ledger; fails if the loss does not fall. */
public final class TrainAFewSteps {
    public static void main(String[] args) throws Exception {
        MemoryLedger ledger = new MemoryLedger();
        var settings = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, 4, 64, 1, "cce", false, Device.CPU, 42, 0);
        TextData data = TextData.load(TextData.BUNDLED, new Tokenizer.Bytes(), 0.05);
        try (Trainer trainer = new Trainer(settings, params -> Optimizers.create("adamw", Map.of("lr", 3e-3), params), ledger)) {
            System.out.print(trainer.planReport());
            double first = Double.NaN, last = Double.NaN;
            for (int step = 0; step < 8; step++) {
                long[][] batch = data.trainBatch(42, step, 4, 64);
                last = trainer.step(new long[][] {batch[0]}, new long[][] {batch[1]}, 1.0);
                if (step == 0) first = last;
                System.out.printf("step %d loss %.4f%n", step + 1, last);
            }
            System.out.print(ledger.table());
            if (!(last < first)) throw new AssertionError("loss did not fall: " + first + " -> " + last);
            System.out.println("consumer check: ok (module " + TrainAFewSteps.class.getModule().getName() + ")");
        }
    }
}
