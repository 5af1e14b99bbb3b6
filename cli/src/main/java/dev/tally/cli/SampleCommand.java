package dev.tally.cli;

import dev.tally.engine.Backends;
import dev.tally.models.data.Tokenizer;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code tally sample}: text generated from a checkpoint. Each new token runs the model over the last {@code --context}
 * tokens (no key/value cache: simple, and fast enough for the models a CPU trains), applies the head in float64 in a
 * fixed order, and picks greedily at temperature 0 or samples from the top-k softmax with a seeded generator, so the
 * same seed prints the same text.
 */
@Command(name = "sample", mixinStandardHelpOptions = true, description = "Generate text from a checkpoint.")
public final class SampleCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "A checkpoint written by tally train.") Path checkpoint;
    @Option(names = "--prompt", description = "Text to continue (default: empty).") String prompt = "";
    @Option(names = "--tokens", description = "Tokens to generate (default: ${DEFAULT-VALUE}).") int tokens = 200;
    @Option(names = "--temperature", description = "0 = greedy (default: ${DEFAULT-VALUE}).") double temperature = 0.8;
    @Option(names = "--top-k", description = "Sample among the k most likely tokens; 0 = all (default: ${DEFAULT-VALUE}).") int topK = 40;
    @Option(names = "--seed", description = "Sampling seed (default: ${DEFAULT-VALUE}).") long seed = 0;
    @Option(names = "--context", description = "Tokens the model sees (default: the checkpoint's training sequence length).") Integer context;
    @Option(names = "--device", description = "auto, cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).") String device = "auto";

    @Override public Integer call() throws Exception {
        if (tokens < 0) throw new IllegalArgumentException("--tokens must be >= 0, got " + tokens);
        if (temperature < 0 || !Double.isFinite(temperature)) throw new IllegalArgumentException("--temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("--top-k must be >= 0, got " + topK);
        CheckpointModel ck = CheckpointModel.open(checkpoint);
        LlamaConfig c = ck.config();
        int window = context != null ? context : Integer.parseInt(ck.setting("seq"));
        if (window < 1 || window > c.maxSequence()) {
            throw new IllegalArgumentException("--context must be in [1, " + c.maxSequence() + "], got " + window);
        }
        Tokenizer tok = Tokenizer.named(ck.setting("tokenizer"));
        int[] promptIds = tok.encode(prompt);
        if (promptIds.length == 0) promptIds = tok.documentSeparator(); // something to condition on
        int[] all = Arrays.copyOf(promptIds, promptIds.length + tokens);
        int n = promptIds.length;
        SplittableRandom random = new SplittableRandom(seed);
        try (Trainer t = ck.trainer(1, window, "ce", Backends.resolve(device))) {
            float[] head = t.model().parameter("lm_head.weight").value().toFloatArray();
            for (int k = 0; k < tokens; k++) {
                int from = Math.max(0, n - window), len = n - from;
                long[] ids = new long[window]; // right-padded: causal attention never lets the padding reach position len-1
                for (int i = 0; i < len; i++) ids[i] = all[from + i];
                float[] hidden = t.hiddenStates(ids);
                all[n++] = pick(logits(head, hidden, (len - 1) * c.hidden(), c.hidden(), c.vocab()), tok.vocabSize(), random);
            }
        }
        System.out.println(prompt + tok.decode(Arrays.copyOfRange(all, promptIds.length, n)));
        return 0;
    }

    private static double[] logits(float[] head, float[] hidden, int at, int d, int vocab) {
        double[] z = new double[vocab];
        for (int v = 0; v < vocab; v++) {
            double acc = 0;
            for (int i = 0; i < d; i++) acc += (double) head[v * d + i] * hidden[at + i];
            z[v] = acc;
        }
        return z;
    }

    /** Greedy at T = 0 (lowest id on ties); otherwise a draw from softmax(z / T) over the top-k ids. */
    int pick(double[] z, int usable, SplittableRandom random) {
        Integer[] order = new Integer[usable]; // only ids the tokenizer can decode
        for (int i = 0; i < usable; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> z[a] != z[b] ? Double.compare(z[b], z[a]) : Integer.compare(a, b));
        if (temperature == 0) return order[0];
        int k = topK == 0 ? usable : Math.min(topK, usable);
        double[] p = new double[k];
        double max = z[order[0]], sum = 0;
        for (int i = 0; i < k; i++) sum += p[i] = Math.exp((z[order[i]] - max) / temperature);
        double u = random.nextDouble() * sum;
        for (int i = 0; i < k; i++) {
            u -= p[i];
            if (u < 0) return order[i];
        }
        return order[k - 1];
    }
}
