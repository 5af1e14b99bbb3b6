package dev.tally.cli;

import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CliTest {
    private static CliRunner.Result run(String... args) { return CliRunner.run(args); }

    @TempDir Path dir;

    private static String[] train(Path out, int steps, String... extra) {
        List<String> a = new java.util.ArrayList<>(List.of("train", "--device", "cpu", "--batch", "2", "--seq", "32", "--steps",
                Integer.toString(steps), "--eval-every", "1000", "--eval-batches", "2", "--no-progress", "--out", out.toString(),
                "--optimizer", "adamw", "--lr", "0.003"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    private static List<Double> losses(Path metrics) throws IOException {
        return Files.readAllLines(metrics).stream().filter(l -> l.contains("\"loss\""))
                .map(l -> ((Number) dev.tally.engine.io.Json.parseObject(l).get("loss")).doubleValue()).toList();
    }

    @Test
    void trainWritesMetricsPlotsAndCheckpointAndResumesBitExactly() throws IOException {
        Path full = dir.resolve("full"), part = dir.resolve("part");
        CliRunner.Result r = run(train(full, 6));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("memory plan:") && r.out().contains("optimizer_state"), r.out());
        for (String f : List.of("metrics.jsonl", "loss.png", "memory.png", "checkpoint.safetensors")) {
            assertTrue(Files.size(full.resolve(f)) > 0, f);
        }
        assertEquals(0, run(train(part, 6, "--stop-at", "3")).code()); // a 6-step run interrupted after step 3
        CliRunner.Result resumed = run("train", "--resume", part.resolve("checkpoint.safetensors").toString(), "--steps", "6", "--out",
                part.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, resumed.code(), resumed.err());
        List<Double> a = losses(full.resolve("metrics.jsonl")), b = losses(part.resolve("metrics.jsonl"));
        assertEquals(6, a.size());
        assertEquals(a, b, "resumed run reproduces the uninterrupted run's losses bit for bit");
        try (SafeTensors.File f = SafeTensors.open(part.resolve("checkpoint.safetensors"))) {
            assertEquals("6", f.metadata().get("step"));
            assertTrue(f.has("model.lm_head.weight") && f.has("optim.lm_head.weight.exp_avg"));
        }
    }

    @Test
    void int8WeightsTrainCheckpointAndResume() throws IOException {
        Path full = dir.resolve("int8full"), part = dir.resolve("int8part");
        String[] int8 = {"--weight-bits", "8", "--weight-group", "128"};
        CliRunner.Result r = run(int8Train(full, 4, int8));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("int8/g128 linear weights") && r.out().contains("optimizer q_apollo_mini"), r.out());
        assertEquals(0, run(int8Train(part, 4, concat(int8, "--stop-at", "2"))).code());
        CliRunner.Result resumed = run("train", "--resume", part.resolve("checkpoint.safetensors").toString(), "--steps", "4", "--out",
                part.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("int8/g128 linear weights"), "the checkpoint's weight format is restored: " + resumed.out());
        assertEquals(losses(full.resolve("metrics.jsonl")), losses(part.resolve("metrics.jsonl")), "resumed int8 run = uninterrupted");
        try (SafeTensors.File f = SafeTensors.open(part.resolve("checkpoint.safetensors"))) {
            assertEquals("U8", f.entry("model.layers.0.mlp.up_proj.weight").dtype());
            assertTrue(f.has("model.layers.0.mlp.up_proj.weight.scales") && f.has("model.layers.0.mlp.up_proj.weight.zeros"));
            assertEquals("F32", f.entry("model.embed_tokens.weight").dtype(), "embedding stays in the model dtype");
            assertEquals("8", f.metadata().get("weight_bits"));
            // the optimizer's state dict: its metadata (name, groups, counters) next to the int8 weights' scales and zeros
            assertEquals("q_apollo_mini", f.metadata().get("optim.optimizer"));
            assertTrue(f.metadata().get("optim.param_groups").contains("\"name\":\"projected\""), f.metadata().get("optim.param_groups"));
            assertTrue(f.metadata().get("optim.counters").contains("\"layers.0.mlp.up_proj.weight\":[4,"), f.metadata().get("optim.counters"));
        }
        CliRunner.Result bad = run(train(dir.resolve("bad"), 1, "--weight-bits", "4"));
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--weight-bits must be 16"), bad.err());
        bad = run(train(dir.resolve("bad"), 1, "--weight-bits", "8"));
        assertTrue(bad.code() != 0 && bad.err().contains("adamw cannot update"), bad.err());
        CliRunner.Result table = run("memtable", "--models", "tiny", "--optimizers", "q_apollo_mini,adamw", "--weight-bits", "8,16", "--weight-group", "128",
                "--format", "csv");
        assertEquals(0, table.code(), table.err());
        assertTrue(table.out().contains("tiny,q_apollo_mini,weights,") && table.out().contains(",8,128"), table.out());
        assertTrue(table.err().contains("int8 weights skipped for adamw"), table.err());
    }

    @Test
    void qGaloreWithInt8WeightsResumesBitExactlyAcrossLazyRefreshes() throws IOException {
        Path full = dir.resolve("qgfull"), part = dir.resolve("qgpart");
        // gap 1: every step refreshes the int4 basis and feeds the lazy-refresh queue, so the resumed run needs both
        String[] q = {"--weight-bits", "8", "--weight-group", "128", "--optimizer", "q_galore_adamw8bit", "--opt", "update_proj_gap=1"};
        CliRunner.Result r = run(int8Train(full, 4, q));
        assertEquals(0, r.code(), r.err());
        assertEquals(0, run(int8Train(part, 4, concat(q, "--stop-at", "2"))).code());
        try (SafeTensors.File f = SafeTensors.open(part.resolve("checkpoint.safetensors"))) {
            String w = "layers.0.mlp.up_proj.weight";
            assertEquals("2", f.metadata().get("step"));
            assertEquals("q_galore_adamw8bit", f.metadata().get("optim.optimizer"));
            assertTrue(f.has("model." + w + ".scales") && f.has("model." + w + ".zeros"));
            for (String state : List.of("projection", "projection_scales", "projection_zeros", "past_vector", "lazy")) {
                assertTrue(f.has("optim." + w + "." + state), "checkpoint lacks optim." + w + "." + state);
            }
            assertEquals("U8", f.entry("optim." + w + ".projection").dtype(), "the packed int4 basis");
        }
        CliRunner.Result resumed = run("train", "--resume", part.resolve("checkpoint.safetensors").toString(), "--steps", "4", "--out",
                part.toString(), "--no-progress", "--device", "cpu");
        assertEquals(0, resumed.code(), resumed.err());
        assertEquals(losses(full.resolve("metrics.jsonl")), losses(part.resolve("metrics.jsonl")), "resumed Q-GaLore run = uninterrupted");
    }

    /** As {@link #train} but without --optimizer: with --weight-bits 8 the default is q_apollo_mini. */
    private static String[] int8Train(Path out, int steps, String... extra) {
        List<String> a = new java.util.ArrayList<>(List.of(train(out, steps, extra)));
        int at = a.indexOf("--optimizer");
        a.remove(at);
        a.remove(at);
        return a.toArray(String[]::new);
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void theLoggedLearningRateIsTheOneTheOptimizerUsed() throws IOException {
        Path out = dir.resolve("lr");
        // --opt lr overrides --lr 0.003: the optimizer steps with 0.005, and the log must say so
        CliRunner.Result r = run(train(out, 1, "--opt", "lr=0.005", "--opt", "weight_decay=0", "--warmup", "0"));
        assertEquals(0, r.code(), r.err());
        List<Double> lrs = Files.readAllLines(out.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"lr\""))
                .map(l -> ((Number) dev.tally.engine.io.Json.parseObject(l).get("lr")).doubleValue()).toList();
        assertEquals(List.of(0.005), lrs);
        assertTrue(r.out().contains("lr 5.00e-03"), r.out());
        // independently: AdamW's first step moves each weight by lr·g/(|g| + eps) ≈ ±lr, so the largest move is the lr used
        String name = "layers.0.mlp.up_proj.weight";
        try (var init = new dev.tally.models.llama.LlamaModel(dev.tally.models.llama.LlamaConfig.named("tiny"), dev.tally.engine.DType.F32,
                     Device.CPU, new dev.tally.engine.MemoryLedger(), 42); // the run's initial weights (--seed 42)
             SafeTensors.File f = SafeTensors.open(out.resolve("checkpoint.safetensors"))) {
            float[] before = init.parameter(name).value().toFloatArray(), after = f.floats("model." + name);
            double moved = 0;
            for (int i = 0; i < before.length; i++) moved = Math.max(moved, Math.abs((double) after[i] - before[i]));
            assertEquals(0.005, moved, 0.005 * 1e-3, "the weights moved by the logged lr");
        }
    }

    @Test
    void aCheckpointOfAnotherOptimizerIsRefusedWithTheReason() throws IOException {
        Path ok = dir.resolve("adamw");
        assertEquals(0, run(train(ok, 1)).code());
        Path relabelled = dir.resolve("relabelled.safetensors");
        try (SafeTensors.File f = SafeTensors.open(ok.resolve("checkpoint.safetensors"))) {
            java.util.Map<String, String> meta = new java.util.LinkedHashMap<>(f.metadata());
            meta.put("optimizer", "adamw8bit"); // the run's settings now name another optimizer than the state's
            try (var host = new dev.tally.engine.MemoryArena(new dev.tally.engine.MemoryLedger(), "copy", MemoryCategory.OTHER, Device.CPU, 64L << 20)) {
                java.util.Map<String, dev.tally.engine.Tensor> tensors = new java.util.LinkedHashMap<>();
                for (var e : f.entries().values()) {
                    dev.tally.engine.Tensor t = host.allocate(e.name(), dev.tally.engine.DType.F32, e.shape());
                    f.readInto(e.name(), t);
                    tensors.put(e.name(), t);
                }
                SafeTensors.write(relabelled, tensors, meta);
            }
        }
        CliRunner.Result r = run("train", "--resume", relabelled.toString(), "--steps", "2", "--out", dir.resolve("z").toString(), "--device", "cpu", "--no-progress");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("adamw8bit: cannot load this state dict: the state dict is from optimizer adamw, this optimizer is adamw8bit"), r.err());
    }

    @Test
    void corruptOrTruncatedCheckpointsGetClearErrors() throws IOException {
        Path ok = dir.resolve("ok");
        assertEquals(0, run(train(ok, 1)).code());
        byte[] bytes = Files.readAllBytes(ok.resolve("checkpoint.safetensors"));
        Path truncated = dir.resolve("truncated.safetensors");
        Files.write(truncated, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        CliRunner.Result r = run("train", "--resume", truncated.toString(), "--out", dir.resolve("x").toString(), "--device", "cpu");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("tally: invalid safetensors file") && r.err().contains("truncated.safetensors"), r.err());
        Path garbage = dir.resolve("garbage.safetensors");
        byte[] g = bytes.clone();
        g[3] = 0x7f; // header length in the petabytes
        Files.write(garbage, g);
        r = run("train", "--resume", garbage.toString(), "--out", dir.resolve("y").toString(), "--device", "cpu");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("does not fit"), r.err());
    }

    @Test
    void badArgumentsAreNamed() {
        CliRunner.Result r = run("train", "--optimizer", "sgd", "--device", "cpu");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("unknown optimizer 'sgd'"), r.err());
        r = run("train", "--model", "llama_9m", "--optimizer", "galore_adamw", "--opt", "rank=4096", "--device", "cpu", "--out", dir.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("rank 4096 exceeds"), r.err());
        r = run("train", "--opt", "weight_decy=0.1", "--optimizer", "adamw", "--device", "cpu", "--out", dir.toString());
        assertTrue(r.err().contains("unknown hyperparameter 'weight_decy'"), r.err());
        r = run("train", "--no-such-flag");
        assertTrue(r.code() != 0 && r.err().contains("--no-such-flag"), r.err());
        r = run("train", "--model", "llama_7b", "--batch", "8", "--seq", "2048", "--loss", "ce", "--device", "cpu", "--out", dir.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("the plan needs") && r.err().contains("available"), r.err());
    }

    @Test
    void memtableCsvMatchesTheLedgerForPaperConfigs() {
        CliRunner.Result r = run("memtable", "--models", "llama_60m,llama_130m,llama_350m,llama_1b,llama_7b", "--optimizers", "adamw,apollo_mini",
                "--format", "csv");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("model,optimizer,category,bytes,loss,dtype,batch,seq,layerwise,weight_bits,weight_group,recompute", lines.get(0));
        assertEquals(1 + 5 * 2 * MemoryCategory.values().length, lines.size());
        for (String m : List.of("llama_60m", "llama_7b")) {
            MemtableCommand.Row row = MemtableCommand.plan(m, "apollo_mini", "cce", "bf16", 1, 256, false);
            for (MemoryCategory c : MemoryCategory.values()) {
                String expect = m + ",apollo_mini," + c.label() + "," + row.bytes().get(c) + ",";
                assertTrue(lines.stream().anyMatch(l -> l.startsWith(expect)), expect);
            }
            long params = dev.tally.models.llama.LlamaConfig.named(m).parameterCount();
            assertTrue(row.bytes().get(MemoryCategory.WEIGHTS) >= 2 * params, "bf16 weights");
        }
        assertTrue(Device.META.toString().equals("meta"));
    }

    /**
     * The losses side by side: cce_fused's loss workspace (a row block of logits, fp32 dE and dC) lies between CCE's and
     * CE's at llama_60m bf16 batch 16 × 256, as planned by the same code the run uses, and the table stays aligned with
     * the longer name.
     */
    @Test
    void memtableListsTheFusedCceBetweenCceAndCe() {
        CliRunner.Result r = run("memtable", "--models", "llama_60m", "--optimizers", "adamw", "--loss", "ce,cce,cce_fused", "--batch", "16");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().filter(l -> l.startsWith("model") || l.startsWith("llama_60m")).toList();
        assertEquals(4, lines.size(), r.out());
        int dtypeColumn = lines.get(0).indexOf("dtype");
        for (String l : lines.subList(1, 4)) assertEquals(dtypeColumn, l.indexOf("bf16"), "aligned columns:\n" + r.out());
        long[] loss = new long[3];
        String[] names = {"ce", "cce", "cce_fused"};
        for (int i = 0; i < 3; i++) loss[i] = MemtableCommand.plan("llama_60m", "adamw", names[i], "bf16", 16, 256, false).bytes().get(MemoryCategory.LOSS);
        assertTrue(loss[1] < loss[2] && loss[2] < loss[0], "loss workspace cce < cce_fused < ce: " + java.util.Arrays.toString(loss));
    }

    @Test
    void memtableRecomputeAutoSaysHowManyLayersFit() {
        MemtableCommand.Row none = MemtableCommand.plan("llama_60m", "adamw", "cce", "bf16", 4, 256, false);
        MemtableCommand.Row all = MemtableCommand.plan("llama_60m", "adamw", "cce", "bf16", 4, 256, false, dev.tally.models.train.Recompute.LAYERS);
        assertEquals(8, all.recomputed());
        assertTrue(all.bytes().get(MemoryCategory.ACTIVATIONS) < none.bytes().get(MemoryCategory.ACTIVATIONS));
        assertEquals(none.bytes().get(MemoryCategory.OPTIMIZER_STATE), all.bytes().get(MemoryCategory.OPTIMIZER_STATE));
        long budget = (none.total() + all.total()) / 2;
        CliRunner.Result r = run("memtable", "--models", "llama_60m", "--optimizers", "adamw", "--batch", "4", "--recompute", "none,layers,auto",
                "--budget", Long.toString(budget), "--format", "csv");
        assertEquals(0, r.code(), r.err());
        List<String[]> rows = r.out().lines().skip(1).map(l -> l.split(",")).toList();
        assertEquals(3 * MemoryCategory.values().length, rows.size());
        int auto = Integer.parseInt(rows.get(2 * MemoryCategory.values().length)[11]); // the recompute column
        assertTrue(auto > 0 && auto <= 8, "auto recomputes some layers: " + auto);
        long autoTotal = rows.stream().skip(2L * MemoryCategory.values().length).mapToLong(x -> Long.parseLong(x[3])).sum();
        assertTrue(autoTotal <= budget, autoTotal + " <= " + budget);
        MemtableCommand.Row fewer = MemtableCommand.plan("llama_60m", "adamw", "cce", "bf16", 4, 256, false,
                new dev.tally.models.train.Recompute.First(auto - 1));
        assertTrue(fewer.total() > budget, "one layer fewer does not fit: " + fewer.total());
        r = run("memtable", "--models", "llama_60m", "--recompute", "sometimes");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--recompute") && r.err().contains("sometimes"), r.err());
    }

    /** fit plans the attention path of the device the runs are for: CUDA keeps the probabilities, the CPU does not. */
    @Test
    void fitPlansTheAttentionOfTheDeviceItPlansFor() {
        java.util.Map<String, Long> activations = new java.util.HashMap<>();
        for (String device : List.of("cpu", "cuda")) {
            CliRunner.Result r = run("fit", "--model", "llama_60m", "--budget", "1TiB", "--batch", "2", "--optimizers", "adamw",
                    "--device", device, "--format", "csv");
            assertEquals(0, r.code(), r.err());
            // the configuration without per-layer updates or recompute
            String row = r.out().lines().filter(l -> l.contains(",activations,") && l.contains(",false,0,16,")).findFirst().orElseThrow();
            activations.put(device, Long.parseLong(row.split(",")[3]));
        }
        // the [B, H, T, T] probabilities (and their gradient) are what differ
        assertTrue(activations.get("cuda") > activations.get("cpu"), activations.toString());
        assertEquals(MemtableCommand.plan("llama_60m", "adamw", "cce", "bf16", 2, 256, false).bytes().get(MemoryCategory.ACTIVATIONS),
                activations.get("cpu"), "--device cpu plans what memtable plans");
    }

    /** memtable plans for --device as fit does: a GPU's plan books the attention probabilities, and the two commands agree. */
    @Test
    void memtablePlansTheAttentionOfTheDeviceItPlansFor() {
        java.util.Map<String, Long> memtable = new java.util.HashMap<>(), fit = new java.util.HashMap<>();
        for (String device : List.of("cpu", "cuda")) {
            CliRunner.Result r = run("memtable", "--models", "llama_60m", "--optimizers", "adamw", "--batch", "2", "--device", device,
                    "--format", "csv");
            assertEquals(0, r.code(), r.err());
            String row = r.out().lines().filter(l -> l.contains(",activations,")).findFirst().orElseThrow();
            memtable.put(device, Long.parseLong(row.split(",")[3]));
            CliRunner.Result f = run("fit", "--model", "llama_60m", "--budget", "1TiB", "--batch", "2", "--optimizers", "adamw",
                    "--device", device, "--format", "csv");
            assertEquals(0, f.code(), f.err());
            String fitRow = f.out().lines().filter(l -> l.contains(",activations,") && l.contains(",false,0,16,")).findFirst().orElseThrow();
            fit.put(device, Long.parseLong(fitRow.split(",")[3]));
        }
        assertTrue(memtable.get("cuda") > memtable.get("cpu"), memtable.toString());
        assertEquals(fit, memtable, "memtable and fit plan the same bytes for the same device");
        assertEquals(MemtableCommand.plan("llama_60m", "adamw", "cce", "bf16", 2, 256, false).bytes().get(MemoryCategory.ACTIVATIONS),
                memtable.get("cpu"), "--device cpu (the default) plans what META assumes");
    }

    /** Planning for a GPU that is not here works; only a default budget needs the device, and the error says what to give. */
    @Test
    void aBudgetForADeviceThatIsNotHereIsAskedFor() {
        org.junit.jupiter.api.Assumptions.assumeFalse(dev.tally.engine.Backends.cudaAvailable(), "a GPU is here: its free memory can be read");
        for (String[] args : new String[][] {{"memtable", "--models", "tiny", "--optimizers", "adamw", "--device", "cuda", "--recompute", "auto"},
                {"fit", "--model", "tiny", "--optimizers", "adamw", "--device", "cuda"}}) {
            CliRunner.Result r = run(args);
            assertTrue(r.code() != 0, String.join(" ", args) + " should fail");
            assertTrue(r.err().contains("free memory of cuda") && r.err().contains("give --budget"), r.err());
        }
        CliRunner.Result ok = run("fit", "--model", "tiny", "--optimizers", "adamw", "--device", "cuda", "--budget", "1GiB");
        assertEquals(0, ok.code(), ok.err());
    }

    @Test
    void fitListsExactlyTheConfigurationsMemtablePlansWithinTheBudget() {
        List<String> optimizers = List.of("adamw", "apollo_mini", "galore_adamw8bit");
        List<Integer> batches = List.of(1, 4);
        // a budget between the plans, so some configurations fit and some do not
        long budget = MemtableCommand.plan("llama_60m", "apollo_mini", "cce", "bf16", 4, 256, false).total() - 1;
        CliRunner.Result r = run("fit", "--model", "llama_60m", "--budget", Long.toString(budget), "--batch", "1,4", "--optimizers",
                String.join(",", optimizers), "--format", "csv");
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("model,optimizer,category,bytes,loss,dtype,batch,seq,layerwise,recompute,weight_bits,state_dtype", lines.get(0));
        int cats = MemoryCategory.values().length;
        assertEquals(0, (lines.size() - 1) % cats);
        java.util.Map<String, java.util.Map<String, Long>> listed = new java.util.LinkedHashMap<>();
        int lastBatch = Integer.MAX_VALUE;
        for (String l : lines.subList(1, lines.size())) {
            String[] f = l.split(",");
            String key = String.join(",", f[1], f[6], f[8], f[9], f[10], f[11]); // optimizer,batch,layerwise,recompute,bits,states
            listed.computeIfAbsent(key, k -> new java.util.LinkedHashMap<>()).put(f[2], Long.parseLong(f[3]));
            assertTrue(Integer.parseInt(f[6]) <= lastBatch, "largest batch first");
            lastBatch = Integer.parseInt(f[6]);
        }
        int checked = 0, excluded = 0;
        for (String o : optimizers) for (int b : batches) for (boolean lw : new boolean[] {false, true}) for (int rc : new int[] {0, 8}) {
            MemtableCommand.Row row = MemtableCommand.plan("llama_60m", o, "cce", "bf16", b, 256, lw, new dev.tally.models.train.Recompute.First(rc));
            String key = String.join(",", o, Integer.toString(b), Boolean.toString(lw), Integer.toString(rc), "16", o.equals("adamw") ? "f32" : "default");
            if (row.total() <= budget) {
                assertTrue(listed.containsKey(key), "fits but not listed: " + key + " " + row.total());
                for (MemoryCategory c : MemoryCategory.values()) assertEquals(row.bytes().get(c), listed.get(key).get(c.label()), key + " " + c.label());
                checked++;
            } else {
                assertTrue(!listed.containsKey(key), "listed but over the budget: " + key);
                excluded++;
            }
        }
        assertTrue(checked >= 4 && excluded >= 4, checked + " fit, " + excluded + " do not");
        // the table form: a cost note per configuration
        r = run("fit", "--model", "llama_60m", "--budget", Long.toString(budget), "--batch", "4", "--optimizers", "adamw");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("recompute all layers") && r.out().contains("per-layer"), r.out());
        r = run("fit", "--model", "llama_60m", "--budget", "lots");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("memory size 'lots'"), r.err());
    }

    /** Every filled row of the README's headline table: its command reproduces the bytes printed next to it. */
    @Test
    void readmeHeadlineCommandsReproduceTheirTotals() throws IOException {
        Path readme = Path.of("..", "README.md");
        List<String> rows = Files.readAllLines(readme).stream()
                .filter(l -> l.startsWith("| ") && l.contains("`./tally memtable") && l.contains("**")).toList();
        assertTrue(rows.size() >= 2, "the headline table has filled rows: " + rows);
        List<String> cats = List.of("weights", "grads", "optimizer_state", "activations", "loss", "workspace");
        for (String row : rows) {
            String[] cells = row.split("\\|");
            String cmd = row.substring(row.indexOf("`./tally memtable") + 1);
            cmd = cmd.substring(0, cmd.indexOf('`'));
            List<String> args = new java.util.ArrayList<>(List.of(cmd.replace("./tally ", "").trim().split("\\s+")));
            args.addAll(List.of("--format", "csv"));
            CliRunner.Result r = run(args.toArray(String[]::new));
            assertEquals(0, r.code(), cmd + ": " + r.err());
            java.util.Map<String, Long> bytes = new java.util.HashMap<>();
            long total = 0;
            for (String l : r.out().lines().skip(1).toList()) {
                String[] f = l.split(",");
                bytes.put(f[2], Long.parseLong(f[3]));
                total += Long.parseLong(f[3]);
            }
            for (int i = 0; i < cats.size(); i++) {
                long printed = Long.parseLong(cells[3 + i].trim().replace(",", ""));
                assertEquals(bytes.get(cats.get(i)), printed, cmd + " " + cats.get(i));
            }
            String bold = row.substring(row.indexOf("**") + 2);
            long printedTotal = Long.parseLong(bold.substring(0, bold.indexOf(" B")).replace(",", ""));
            assertEquals(total, printedTotal, cmd + " total");
        }
    }

    @Test
    void trainWithRecomputeSaysWhatItChoseAndKeepsItInTheCheckpoint() throws IOException {
        Path out = dir.resolve("rc");
        CliRunner.Result r = run(train(out, 2, "--recompute", "layers"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("recompute: 2 of 2 layers") && r.out().contains("with recompute") && r.out().contains("without"), r.out());
        try (SafeTensors.File f = SafeTensors.open(out.resolve("checkpoint.safetensors"))) {
            assertEquals("layers", f.metadata().get("recompute"));
        }
        r = run(train(dir.resolve("rc2"), 1, "--recompute", "auto", "--budget", "1KiB"));
        assertEquals(2, r.code(), "nothing fits 1 KiB: the plan is refused");
        assertTrue(r.out().contains("no number of recomputed layers fits") && r.err().contains("the plan needs"), r.out() + r.err());
    }
}
