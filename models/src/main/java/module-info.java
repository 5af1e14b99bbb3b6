/** The LLaMA-style transformer, the losses (CE and Cut Cross-Entropy), tokenizers and data, and the Trainer. */
module dev.tally.models {
    requires transitive dev.tally.autograd;
    requires java.management; // CPU time in the loss benchmark
    requires jtokkit; // the GPT-2 BPE tokenizer (an automatic module: its jar names no module)

    exports dev.tally.models.data;
    exports dev.tally.models.llama;
    exports dev.tally.models.loss;
    exports dev.tally.models.train;
}
