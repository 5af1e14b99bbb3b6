package dev.tally.cli;

import dev.tally.engine.Backends;
import dev.tally.models.data.TextData;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code tally eval}: held-out loss and perplexity of a checkpoint. The held-out split is the one training used (the last
 * 5% of the data's tokens); batch, sequence length, data and tokenizer default to the checkpoint's, so with the default
 * {@code --eval-batches} the figure equals the run's final held-out evaluation.
 */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Held-out loss and perplexity of a checkpoint.")
public final class EvalCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "A checkpoint written by tally train.") Path checkpoint;
    @Option(names = "--data", description = "Data to evaluate on (default: the checkpoint's).") String data;
    @Option(names = "--batch", description = "Sequences per batch (default: the checkpoint's).") Integer batch;
    @Option(names = "--seq", description = "Sequence length (default: the checkpoint's).") Integer seq;
    @Option(names = "--eval-batches", description = "Held-out batches (default: ${DEFAULT-VALUE}).") int evalBatches = 8;
    @Option(names = "--device", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).") String device = "auto";

    @Override public Integer call() throws Exception {
        CheckpointModel ck = CheckpointModel.open(checkpoint);
        int b = batch != null ? batch : Integer.parseInt(ck.setting("batch"));
        int s = seq != null ? seq : Integer.parseInt(ck.setting("seq"));
        Tokenizer tok = Tokenizer.named(ck.setting("tokenizer"));
        TextData text = TextData.load(data != null ? data : ck.setting("data"), tok, 0.05);
        List<long[][]> batches = text.evalBatches(b, s, evalBatches);
        double sum = 0;
        try (Trainer t = ck.trainer(b, s, ck.setting("loss"), Backends.resolve(device))) {
            for (long[][] x : batches) sum += t.evaluate(x[0], x[1]);
        }
        double loss = sum / batches.size();
        System.out.printf("checkpoint %s (step %s), data %s: %,d held-out tokens in %d batches of %d x %d%n", checkpoint,
                ck.setting("step"), text.source(), (long) batches.size() * b * s, batches.size(), b, s);
        System.out.printf("held-out loss %.4f  perplexity %.2f%n", loss, Math.exp(loss));
        return 0;
    }
}
