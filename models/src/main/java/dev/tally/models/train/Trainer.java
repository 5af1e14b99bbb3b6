package dev.tally.models.train;

import dev.tally.autograd.Functions;
import dev.tally.autograd.Graph;
import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.autograd.Var;
import dev.tally.engine.Arena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.plan.MemoryPlan;
import dev.tally.engine.plan.PlannedAllocator;
import dev.tally.engine.plan.Planner;
import dev.tally.engine.plan.TracingAllocator;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.llama.LlamaModel;
import dev.tally.models.llama.WeightFormat;
import dev.tally.models.loss.LinearCrossEntropy;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * One training run's memory and steps. Construction declares everything: weights, gradients (all of them, or — with
 * layer-wise updates — one at a time), optimizer state and workspace, and the activation and loss arenas, sized by
 * tracing one micro-step on META and planning it with reuse by liveness. Every later micro-step replays the plan, so
 * nothing is allocated inside a step and the printed plan is the memory used. On META, construction alone yields the
 * whole memory table of the run.
 */
public final class Trainer implements AutoCloseable {

    /** What to train and how; {@code weights} says how linear weights are stored (model dtype or int8). */
    public record Settings(LlamaConfig config, DType dtype, int batch, int seq, int accumulation, String loss,
                           boolean layerwise, Device device, long seed, double clipNorm, WeightFormat weights) {
        /** Weights in the model dtype. */
        public Settings(LlamaConfig config, DType dtype, int batch, int seq, int accumulation, String loss,
                        boolean layerwise, Device device, long seed, double clipNorm) {
            this(config, dtype, batch, seq, accumulation, loss, layerwise, device, seed, clipNorm, WeightFormat.MODEL_DTYPE);
        }

        public Settings withWeights(WeightFormat format) {
            return new Settings(config, dtype, batch, seq, accumulation, loss, layerwise, device, seed, clipNorm, format);
        }

        public Settings {
            java.util.Objects.requireNonNull(weights, "weights (the weight format)");
            if (batch < 1 || seq < 1 || accumulation < 1) throw new IllegalArgumentException("batch, seq and accumulation must be >= 1");
            if (seq > config.maxSequence()) {
                throw new IllegalArgumentException("sequence length " + seq + " exceeds the config's maximum " + config.maxSequence());
            }
            if (layerwise && clipNorm > 0) {
                throw new IllegalArgumentException("gradient clipping needs every gradient at once; it cannot be combined with layer-wise updates");
            }
            LinearCrossEntropy.named(loss); // validates the name
        }

        public int tokensPerMicroBatch() { return batch * seq; }

        /** The same run on another device (META, to plan it). */
        public Settings withDevice(Device d) {
            return new Settings(config, dtype, batch, seq, accumulation, loss, layerwise, d, seed, clipNorm, weights);
        }
    }

    private final Settings s;
    private final MemoryLedger ledger;
    private final LlamaModel model;
    private final Optimizer optimizer;
    private final Optimizer.MemoryNeeds optimizerNeeds;
    private final Arena grads;
    private final Arena inputs;
    private final Arena activations;
    private final Arena lossArena;
    private final PlannedAllocator actAlloc;
    private final PlannedAllocator lossAlloc;
    private final MemoryPlan actPlan;
    private final MemoryPlan lossPlan;
    private final Tensor ids;
    private final Tensor targets;
    private final Tensor scratch;
    private final Map<Parameter, Tensor> gradBuffers = new IdentityHashMap<>();
    private final LinearCrossEntropy lossFn;
    private int optimizerSteps;
    private double[] lastLearningRates = new double[0];

    /**
     * A run planned before anything is allocated: the activation and loss plans from one micro-step traced on META, the
     * optimizer's needs from one dry run, and the bytes every category will take on the settings' device. A trainer built
     * from it ({@link Trainer#Trainer(Plan, MemoryLedger)}) books exactly these bytes and runs no META pass of its own.
     */
    public record Plan(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, String optimizerName,
                       MemoryPlan activations, MemoryPlan loss, Optimizer.MemoryNeeds optimizerNeeds,
                       Map<MemoryCategory, Long> bytes) {
        public Plan {
            bytes = java.util.Collections.unmodifiableMap(new java.util.EnumMap<>(bytes));
        }

        public long totalBytes() { return bytes.values().stream().mapToLong(Long::longValue).sum(); }

        /** What users see before a run: bytes per category plus the largest activation buffers. */
        public String report() { return Trainer.report(settings, optimizerName, bytes, activations); }
    }

    /**
     * Plans a run of {@code settings} on META (a private ledger; nothing is booked on the settings' device): the model,
     * the optimizer's state and workspace, one traced micro-step. Print it, check it against the device, then build the
     * run with {@link #Trainer(Plan, MemoryLedger)}.
     */
    public static Plan plan(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory) {
        MemoryLedger metaLedger = new MemoryLedger();
        try (Trainer t = new Trainer(settings.withDevice(Device.META), optimizerFactory, metaLedger, null)) {
            Map<MemoryCategory, Long> bytes = new java.util.EnumMap<>(MemoryCategory.class);
            for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, metaLedger.entry(Device.META, c).capacity());
            return new Plan(settings, optimizerFactory, t.optimizer.name(), t.actPlan, t.lossPlan, t.optimizerNeeds, bytes);
        }
    }

    /** Plans (on META: one traced micro-step, one optimizer dry run) and builds the run in one go. */
    public Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger) {
        this(settings, optimizerFactory, ledger, null);
    }

    /** Builds the planned run on its device: the same bookings as the plan, no tracing, no optimizer dry run. */
    public Trainer(Plan plan, MemoryLedger ledger) {
        this(plan.settings(), plan.optimizerFactory(), ledger, plan);
    }

    private Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger, Plan plan) {
        this.s = settings;
        this.ledger = ledger;
        this.lossFn = LinearCrossEntropy.named(settings.loss());
        this.model = new LlamaModel(settings.config(), settings.dtype(), settings.device(), ledger, settings.seed(), settings.weights());
        this.optimizer = optimizerFactory.apply(model.parameters());
        // a planned run takes the plan's optimizer needs; otherwise the optimizer sizes itself (its one dry run on META)
        optimizerNeeds = plan != null ? plan.optimizerNeeds() : optimizer.memoryNeeds();
        optimizer.allocateState(ledger, optimizerNeeds);
        List<Parameter> params = model.parameters();
        long all = 0, largest = 0;
        for (Parameter p : params) {
            long b = Arena.bookedBytes(s.dtype(), p.value().shape());
            all += b;
            largest = Math.max(largest, b);
        }
        boolean oneAtATime = settings.layerwise() && settings.accumulation() == 1;
        grads = new Arena(ledger, "grads", MemoryCategory.GRADS, settings.device(), oneAtATime ? largest : all);
        if (!settings.layerwise()) {
            for (Parameter p : params) {
                Tensor g = grads.allocate("grad." + p.name(), s.dtype(), p.value().shape());
                p.setGrad(g);
                if (settings.device().hasMemory()) g.ops().fill(g, 0);
            }
        } else {
            for (Parameter p : params) {
                p.addGradReadyHook(pp -> {
                    optimizer.stepParameter(pp);
                    releaseGrad(pp);
                });
            }
        }
        int n = settings.tokensPerMicroBatch();
        long inputBytes = 2 * Arena.bookedBytes(DType.I64, Shape.of(n)) + 2 * Arena.ALIGNMENT;
        inputs = new Arena(ledger, "inputs", MemoryCategory.ACTIVATIONS, settings.device(), inputBytes);
        ids = inputs.allocate("input.ids", DType.I64, settings.batch(), settings.seq());
        targets = inputs.allocate("input.targets", DType.I64, n);
        scratch = inputs.allocate("input.scratch", DType.F32, 2);

        MemoryPlan[] plans = plan != null ? new MemoryPlan[] {plan.activations(), plan.loss()} : trace(settings);
        actPlan = plans[0];
        lossPlan = plans[1];
        actAlloc = new PlannedAllocator(actPlan);
        lossAlloc = new PlannedAllocator(lossPlan);
        activations = new Arena(ledger, "activations", MemoryCategory.ACTIVATIONS, settings.device(), actPlan.size(), actAlloc);
        lossArena = new Arena(ledger, "loss", MemoryCategory.LOSS, settings.device(), lossPlan.size(), lossAlloc);
    }

    /** Records one micro-step on META (a twin model, its own scratch ledger) and plans both arenas. */
    private static MemoryPlan[] trace(Settings s) {
        MemoryLedger scratch = new MemoryLedger();
        TracingAllocator actTrace = new TracingAllocator(), lossTrace = new TracingAllocator();
        try (LlamaModel twin = new LlamaModel(s.config(), s.dtype(), Device.META, scratch, 0, s.weights());
             Arena gradArena = new Arena(scratch, "grads", MemoryCategory.GRADS, Device.META, 1L << 50);
             Arena in = new Arena(scratch, "inputs", MemoryCategory.ACTIVATIONS, Device.META, 1L << 50);
             Arena acts = new Arena(scratch, "activations", MemoryCategory.ACTIVATIONS, Device.META, 1L << 50, actTrace);
             Arena loss = new Arena(scratch, "loss", MemoryCategory.LOSS, Device.META, 1L << 50, lossTrace)) {
            Map<Parameter, Tensor> g = new IdentityHashMap<>();
            Tensor ids = in.allocate("ids", DType.I64, s.batch(), s.seq());
            Tensor targets = in.allocate("targets", DType.I64, s.tokensPerMicroBatch());
            Graph graph = new Graph(acts, loss, p -> g.computeIfAbsent(p, k -> gradArena.allocate("g", s.dtype(), k.value().shape())), true);
            Var lossVar = forwardLoss(graph, twin, LinearCrossEntropy.named(s.loss()), ids, targets, s);
            graph.backward(lossVar, 1.0);
            graph.close();
            return new MemoryPlan[] {Planner.plan(actTrace.events()), Planner.plan(lossTrace.events())};
        }
    }

    private static Var forwardLoss(Graph g, LlamaModel model, LinearCrossEntropy lossFn, Tensor ids, Tensor targets, Settings s) {
        Var hidden = model.forward(g, ids, s.batch(), s.seq());
        Var head = g.param(model.parameter("lm_head.weight"));
        Var tgt = g.input(targets);
        return Functions.externalLoss(g, List.of(hidden, head, tgt), new Functions.ExternalLoss() {
            LinearCrossEntropy.Saved saved;

            @Override public void forward(Tensor loss) {
                saved = lossFn.forward(hidden.value(), head.value(), targets, loss, g.lossArena());
            }

            @Override public void backward(Tensor dLoss, Graph gr) {
                Tensor dE = Functions.gradOf(gr, hidden);
                Tensor dC = gr.alloc("tmp.loss.dC", head.value().dtype(), head.value().dims());
                lossFn.backward(saved, dLoss, dE, dC, gr.lossArena());
                if (head.requiresGrad()) {
                    Tensor hg = Functions.gradOf(gr, head);
                    hg.ops().binary(dev.tally.engine.BinaryOp.ADD, hg, dC, hg);
                }
                gr.activations().free(dC);
            }

            @Override public void discard() { saved.free(); }
        });
    }

    private Tensor gradFor(Parameter p) {
        Tensor g = p.grad();
        if (g == null) {
            g = grads.allocate("grad." + p.name(), s.dtype(), p.value().shape());
            g.ops().fill(g, 0);
            p.setGrad(g);
            gradBuffers.put(p, g);
        }
        return g;
    }

    private void releaseGrad(Parameter p) {
        Tensor g = gradBuffers.remove(p);
        if (g != null) {
            grads.free(g);
            p.setGrad(null);
        }
    }

    /** One micro-batch's forward + backward on the planned arenas; returns the micro-batch's mean loss. */
    private double microStep(long[] inputIds, long[] targetIds, boolean last) {
        ids.copyFrom(inputIds);
        targets.copyFrom(targetIds);
        actAlloc.reset();
        lossAlloc.reset();
        Graph g = new Graph(activations, lossArena, this::gradFor, last);
        Var loss = forwardLoss(g, model, lossFn, ids, targets, s);
        double value = loss.value().item();
        g.backward(loss, 1.0 / s.accumulation());
        g.close();
        return value;
    }

    /**
     * One optimizer step over {@code accumulation} micro-batches: inputs[k] and targets[k] hold batch·seq token ids each
     * (targets −100 = ignored). {@code lrFactor} is the schedule's factor for this step. Returns the mean loss.
     */
    public double step(long[][] inputs, long[][] targetIds, double lrFactor) {
        if (!s.device().hasMemory()) throw new IllegalStateException("a META trainer plans memory; it cannot run steps");
        if (inputs.length != s.accumulation() || targetIds.length != s.accumulation()) {
            throw new IllegalArgumentException("expected " + s.accumulation() + " micro-batches, got " + inputs.length);
        }
        optimizer.setLrScale(lrFactor);
        lastLearningRates = optimizer.learningRates();
        double sum = 0;
        for (int k = 0; k < s.accumulation(); k++) sum += microStep(inputs[k], targetIds[k], k == s.accumulation() - 1);
        if (!s.layerwise()) {
            if (s.clipNorm() > 0) clipGradients(s.clipNorm());
            optimizer.step();
            optimizer.zeroGrad();
        } else if (s.accumulation() > 1) {
            grads.release(0); // all gradients were freed by their hooks; start the next step from an empty arena
        }
        optimizerSteps++;
        return sum / s.accumulation();
    }

    /** Scales every gradient by min(1, maxNorm / global L2 norm); returns the norm before clipping. */
    public double clipGradients(double maxNorm) {
        Tensor sq = scratch.slice(0, 0, 1);
        double total = 0;
        for (Parameter p : model.parameters()) {
            p.grad().ops().reduceAll(ReduceOp.SUM_SQUARES, p.grad(), sq);
            total += sq.item();
        }
        double norm = Math.sqrt(total);
        if (norm > maxNorm) {
            for (Parameter p : model.parameters()) {
                p.grad().ops().binaryScalar(dev.tally.engine.BinaryOp.MUL, p.grad(), maxNorm / (norm + 1e-6), p.grad());
            }
        }
        return norm;
    }

    /** Mean loss over micro-batches without updating anything (token-weighted when combined by the caller). */
    public double evaluate(long[] inputIds, long[] targetIds) {
        ids.copyFrom(inputIds);
        targets.copyFrom(targetIds);
        actAlloc.reset();
        lossAlloc.reset();
        Graph g = new Graph(activations, lossArena, this::gradFor, false);
        double value;
        try (AutoCloseable off = g.noGrad()) {
            value = forwardLoss(g, model, lossFn, ids, targets, s).value().item();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        g.close();
        return value;
    }

    public Settings settings() { return s; }
    public LlamaModel model() { return model; }
    public Optimizer optimizer() { return optimizer; }
    public MemoryLedger ledger() { return ledger; }
    public MemoryPlan activationPlan() { return actPlan; }
    public MemoryPlan lossPlan() { return lossPlan; }
    public Arena activationArena() { return activations; }
    public Arena lossArena() { return lossArena; }
    public Arena gradArena() { return grads; }
    public int optimizerSteps() { return optimizerSteps; }

    /** Each parameter group's learning rate in the last {@link #step} (base lr × that step's factor), as the optimizer used it. */
    public double[] lastLearningRates() { return lastLearningRates.clone(); }

    /** The plan users see before a run: bytes per category (as booked in this trainer's ledger) plus the largest activation buffers. */
    public String planReport() {
        Map<MemoryCategory, Long> bytes = new java.util.EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, ledger.entry(s.device(), c).capacity());
        return report(s, optimizer.name(), bytes, actPlan);
    }

    private static String report(Settings s, String optimizerName, Map<MemoryCategory, Long> bytes, MemoryPlan actPlan) {
        StringBuilder b = new StringBuilder();
        b.append(String.format("memory plan: %s %s%s, batch %d x seq %d, accumulation %d, loss %s, optimizer %s%s, on %s%n",
                s.config().name(), s.dtype(), s.weights().quantized() ? " (" + s.weights() + " linear weights)" : "", s.batch(), s.seq(),
                s.accumulation(), s.loss(), optimizerName, s.layerwise() ? " (layer-wise)" : "", s.device()));
        long total = 0;
        for (MemoryCategory c : MemoryCategory.values()) {
            long n = bytes.getOrDefault(c, 0L);
            if (n == 0) continue;
            total += n;
            b.append(String.format("  %-16s %,18d B  %12s%n", c.label(), n, MemoryLedger.human(n)));
        }
        b.append(String.format("  %-16s %,18d B  %12s%n", "total", total, MemoryLedger.human(total)));
        b.append("  largest activation buffers:\n");
        for (String l : actPlan.largest(5)) b.append("    ").append(l).append('\n');
        return b.toString();
    }

    @Override public void close() {
        optimizer.close();
        lossArena.close();
        activations.close();
        inputs.close();
        grads.close();
        model.close();
    }
}
