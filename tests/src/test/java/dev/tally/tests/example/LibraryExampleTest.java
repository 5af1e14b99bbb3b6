package dev.tally.tests.example;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.optim.Optimizers;
import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.autograd.Parameter.Role;
import dev.tally.optim.ParamGroup;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

    @Test
    void readmeParamGroupsExampleTrainsWithPerGroupLearningRates() throws Exception {
        MemoryLedger ledger = new MemoryLedger();
        var settings = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, 4, 64, 1, "cce", false, Device.CPU, 42, 0);
        TextData data = TextData.load(TextData.BUNDLED, new Tokenizer.Bytes(), 0.05);
        long[][] batch = data.trainBatch(42, 0, 4, 64);
        // --- README groups example begins ---
        Function<List<Parameter>, Optimizer> grouped = params -> Optimizers.create("galore_adamw",
                Map.of("lr", 0.01, "weight_decay", 0.1, "rank", 8), List.of(     // defaults for every group
                        ParamGroup.of(ParamGroup.byRole(params, Role.LINEAR)).withProjection(),  // GaLore on the block matrices
                        ParamGroup.of(ParamGroup.byRole(params, Role.NORM, Role.EMBEDDING)).with("weight_decay", 0.0),
                        ParamGroup.of(ParamGroup.byRole(params, Role.HEAD)).with("lr", 0.002)));
        Trainer.Plan plan = Trainer.plan(settings, grouped);              // on META: nothing allocated yet
        System.out.print(plan.report());
        try (Trainer trainer = new Trainer(plan, ledger)) {               // books exactly the plan
            trainer.step(new long[][] {batch[0]}, new long[][] {batch[1]}, 0.5);  // the schedule's factor this step
            double[] lrs = trainer.lastLearningRates();                   // [0.005, 0.005, 0.001]: base lr x 0.5
            Optimizer.StateDict state = trainer.optimizer().stateDict();   // state tensors + groups and hyperparameters
            // --- README groups example ends ---
            assertArrayEquals(new double[] {0.005, 0.005, 0.001}, lrs);
            assertTrue(state.metadata().get("param_groups").contains("\"weight_decay\":0.0"), state.metadata().get("param_groups"));
            var groups = ((dev.tally.optim.TallyOptimizer) trainer.optimizer()).paramGroups();
            assertEquals(List.of(14, 6, 1), groups.stream().map(g -> g.params().size()).toList(), "2 layers x 7 matrices; 5 norms and the embedding; the head");
            assertTrue(groups.get(0).projected() && !groups.get(1).projected());
        }
    }
}
