package dev.tally.cli;

import dev.tally.autograd.Parameter;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.io.SafeTensors;
import dev.tally.models.llama.LlamaModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code tally export}: a checkpoint's weights as a Hugging Face LLaMA folder (see {@link HfLlama} for the conventions). */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Write a checkpoint as a Hugging Face LLaMA folder (config.json + model.safetensors) that LlamaForCausalLM.from_pretrained loads.")
public final class ExportCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "A checkpoint written by tally train.") Path checkpoint;
    @Option(names = "--out", required = true, description = "Folder to write.") Path out;
    @Option(names = "--dtype", description = "bf16 or f32 (default: ${DEFAULT-VALUE}).") String dtype = "bf16";

    @Override public Integer call() throws Exception {
        DType dt = DType.parse(dtype);
        if (dt != DType.F32 && dt != DType.BF16) throw new IllegalArgumentException("--dtype must be bf16 or f32, got " + dtype);
        CheckpointModel ck = CheckpointModel.open(checkpoint);
        try (LlamaModel model = new LlamaModel(ck.config(), ck.dtype(), Device.CPU, new MemoryLedger(), 0);
             SafeTensors.File f = SafeTensors.open(checkpoint)) {
            for (Parameter p : model.parameters()) f.readInto("model." + p.name(), p.value());
            HfLlama.export(model, dt, out);
        }
        System.out.printf("wrote %s (%s, %,d parameters, %s): config.json, model.safetensors%n", out, ck.config().name(),
                ck.config().parameterCount(), dt);
        return 0;
    }
}
