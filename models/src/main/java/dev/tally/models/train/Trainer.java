package dev.tally.models.train;

import dev.tally.autograd.Functions;
import dev.tally.autograd.Graph;
import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.autograd.Var;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.plan.MemoryPlan;
import dev.tally.engine.profile.OpProfile;
import dev.tally.engine.plan.PlannedAllocator;
import dev.tally.engine.plan.Planner;
import dev.tally.engine.plan.SeparateAllocator;
import dev.tally.engine.plan.StepAllocator;
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

    /**
     * What to train and how. {@code weights} says how linear weights are stored (model dtype or int8);
     * {@code recompute} says which decoder layers keep only their input in forward and are recomputed in backward
     * ({@link Recompute#NONE} by default).
     */
    public record Settings(LlamaConfig config, DType dtype, int batch, int seq, int accumulation, String loss,
                           boolean layerwise, Device device, long seed, double clipNorm, WeightFormat weights,
                           Recompute recompute) {
        /** Weights in the model dtype, no activation recompute. */
        public Settings(LlamaConfig config, DType dtype, int batch, int seq, int accumulation, String loss,
                        boolean layerwise, Device device, long seed, double clipNorm) {
            this(config, dtype, batch, seq, accumulation, loss, layerwise, device, seed, clipNorm, WeightFormat.MODEL_DTYPE,
                    Recompute.NONE);
        }

        public Settings withWeights(WeightFormat format) {
            return new Settings(config, dtype, batch, seq, accumulation, loss, layerwise, device, seed, clipNorm, format, recompute);
        }

        public Settings withDevice(Device d) {
            return new Settings(config, dtype, batch, seq, accumulation, loss, layerwise, d, seed, clipNorm, weights, recompute);
        }

        public Settings withRecompute(Recompute r) {
            return new Settings(config, dtype, batch, seq, accumulation, loss, layerwise, device, seed, clipNorm, weights, r);
        }

        public Settings {
            java.util.Objects.requireNonNull(weights, "weights (the weight format)");
            java.util.Objects.requireNonNull(recompute, "recompute (use Recompute.NONE)");
            if (!(recompute instanceof Recompute.Auto)) recompute.layersOf(config.layers()); // validates the count
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

    }

    /**
     * Where a step's activation and loss buffers go — a checking and debugging choice; runs use {@link #PLANNED}.
     * {@code separate}: every buffer gets bytes of its own (arenas sized by the sum of the traced sizes) instead of the
     * plan's shared offsets, the reference a plan is checked against. {@code poison}: the activation, loss and gradient
     * arenas fill every booking with NaN when it is handed out and when it is freed ({@link MemoryArena#poisonBookings}), so
     * a plan that overlaps live buffers or a read of freed memory cannot pass silently.
     */
    public record StepMemory(boolean separate, boolean poison) {
        /** The plan's offsets; poisoned when the system property {@code tally.debug.poison} is true. */
        public static final StepMemory PLANNED = new StepMemory(false, Boolean.getBoolean("tally.debug.poison"));
    }

    private final Settings s;
    private final MemoryLedger ledger;
    private final LlamaModel model;
    private final Optimizer optimizer;
    private final Optimizer.MemoryNeeds optimizerNeeds;
    private final MemoryArena grads;
    private final MemoryArena inputs;
    private final MemoryArena activations;
    private final MemoryArena lossArena;
    private final StepAllocator actAlloc;
    private final StepAllocator lossAlloc;
    private final MemoryPlan actPlan;
    private final MemoryPlan lossPlan;
    private final Tensor ids;
    private final Tensor targets;
    private final Tensor scratch;
    private final Map<Parameter, Tensor> gradBuffers = new IdentityHashMap<>();
    private final LinearCrossEntropy lossFn;
    private final int recomputedLayers;
    private final String recomputeNote;
    private final StepTracer tracer;
    private int optimizerSteps;
    private double[] lastLearningRates = new double[0];
    private OpProfile profile;

    /** The traced step's two plans: the ACTIVATIONS arena's and the LOSS arena's. */
    public record StepPlans(MemoryPlan activations, MemoryPlan loss) {
        public long bytes() { return activations.size() + loss.size(); }
    }

    /**
     * Traces one micro-step of {@code settings} with the first {@code recomputedLayers} layers recomputed. The plans
     * depend only on the model, dtype, batch, sequence, loss and recompute — never on the optimizer or layer-wise
     * updates — so a search over configurations may share them ({@code tally fit} caches them this way).
     */
    @FunctionalInterface
    public interface StepTracer {
        StepPlans trace(Settings settings, int recomputedLayers);
    }

    /** The real tracer: records the step on META and plans it. */
    public static final StepTracer TRACE = Trainer::trace;

    /**
     * A run planned before anything is allocated: the activation and loss plans from one micro-step traced on META, the
     * optimizer's needs from one dry run, and the bytes every category will take on the settings' device. A trainer built
     * from it ({@link Trainer#Trainer(Plan, MemoryLedger)}) books exactly these bytes and runs no META pass of its own.
     */
    public record Plan(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, String optimizerName,
                       MemoryPlan activations, MemoryPlan loss, Optimizer.MemoryNeeds optimizerNeeds,
                       Map<MemoryCategory, Long> bytes, String recomputeLines) {
        public Plan {
            bytes = java.util.Collections.unmodifiableMap(new java.util.EnumMap<>(bytes));
        }

        public long totalBytes() { return bytes.values().stream().mapToLong(Long::longValue).sum(); }

        /** What users see before a run: bytes per category plus the largest activation buffers. */
        public String report() { return Trainer.report(settings, optimizerName, bytes, activations, recomputeLines); }

        StepPlans steps() { return new StepPlans(activations, loss); }
    }

    /**
     * Plans a run of {@code settings} on META (a private ledger; nothing is booked on the settings' device): the model,
     * the optimizer's state and workspace, one traced micro-step. Print it, check it against the device, then build the
     * run with {@link #Trainer(Plan, MemoryLedger)}.
     */
    public static Plan plan(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory) {
        MemoryLedger metaLedger = new MemoryLedger();
        // the step is traced with the attention path of the device the plan is for (CUDA has no fused kernel), not META's
        boolean fused = fusedAttention(settings.device());
        StepTracer tracer = (st, k) -> trace(st, k, fused);
        try (Trainer t = new Trainer(settings.withDevice(Device.META), optimizerFactory, metaLedger, tracer, StepMemory.PLANNED)) {
            Map<MemoryCategory, Long> bytes = new java.util.EnumMap<>(MemoryCategory.class);
            for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, metaLedger.entry(Device.META, c).capacity());
            // recompute auto is resolved here, once, against the budget: the run takes the plan's choice
            Settings chosen = settings.withRecompute(new Recompute.First(t.recomputedLayers));
            return new Plan(chosen, optimizerFactory, t.optimizer.name(), t.actPlan, t.lossPlan, t.optimizerNeeds, bytes, t.recomputeLines());
        }
    }

    /** Plans (on META: one traced micro-step, one optimizer dry run) and builds the run in one go. */
    public Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger) {
        this(settings, optimizerFactory, ledger, TRACE, StepMemory.PLANNED);
    }

    /** Builds the planned run on its device: the same bookings as the plan, no tracing, no optimizer dry run. */
    public Trainer(Plan plan, MemoryLedger ledger) {
        this(plan.settings(), plan.optimizerFactory(), ledger, (st, k) -> plan.steps(), StepMemory.PLANNED, plan);
    }

    /** As above, with the step traced by {@code tracer} (a cache of {@link #TRACE}'s results, for planning searches). */
    public Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger, StepTracer tracer) {
        this(settings, optimizerFactory, ledger, tracer, StepMemory.PLANNED);
    }

    /** As above, with the step's buffers placed as {@code memory} says (separate buffers, poisoning: for checks). */
    public Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger, StepMemory memory) {
        this(settings, optimizerFactory, ledger, TRACE, memory);
    }

    public Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger, StepTracer tracer,
                   StepMemory memory) {
        this(settings, optimizerFactory, ledger, tracer, memory, null);
    }

    private Trainer(Settings settings, Function<List<Parameter>, Optimizer> optimizerFactory, MemoryLedger ledger, StepTracer tracer,
                    StepMemory memory, Plan plan) {
        this.s = settings;
        this.tracer = tracer;
        long bookedBefore = ledger.totalCapacity(settings.device());
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
            long b = MemoryArena.bookedBytes(s.dtype(), p.value().shape());
            all += b;
            largest = Math.max(largest, b);
        }
        boolean oneAtATime = settings.layerwise() && settings.accumulation() == 1;
        grads = new MemoryArena(ledger, "grads", MemoryCategory.GRADS, settings.device(), oneAtATime ? largest : all).poisonBookings(memory.poison());
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
        long inputBytes = 2 * MemoryArena.bookedBytes(DType.I64, Shape.of(n)) + 2 * MemoryArena.ALIGNMENT;
        inputs = new MemoryArena(ledger, "inputs", MemoryCategory.ACTIVATIONS, settings.device(), inputBytes);
        ids = inputs.allocate("input.ids", DType.I64, settings.batch(), settings.seq());
        targets = inputs.allocate("input.targets", DType.I64, n);
        scratch = inputs.allocate("input.scratch", DType.F32, 2);

        // Everything but the step's two arenas is booked now: resolve the recompute setting against the budget.
        long fixed = ledger.totalCapacity(settings.device()) - bookedBefore;
        int layers = settings.config().layers();
        StepPlans plans;
        if (settings.recompute() instanceof Recompute.Auto auto) {
            // Fewest layers that fit, by a scan from none upwards. Not a bisection: the planned bytes are not monotone
            // in the number of recomputed layers (the packing of the step's buffers into one arena is a heuristic;
            // a llama_7b plan grew by 128 MiB from 31 to 32 recomputed layers), so every count up to the answer is traced.
            StepPlans chosen = null;
            int k = 0;
            for (; k <= layers; k++) {
                chosen = tracer.trace(settings, k);
                if (fixed + chosen.bytes() <= auto.budgetBytes()) break;
            }
            if (k > layers) { // nothing fits: recompute everything and let the caller refuse the plan
                k = layers;
                chosen = tracer.trace(settings, layers);
            }
            recomputedLayers = k;
            plans = chosen;
            long total = fixed + plans.bytes();
            recomputeNote = total <= auto.budgetBytes()
                    ? String.format("recompute auto: %d of %d layers (%s) fit the budget %s: plan %s", recomputedLayers, layers,
                            layerList(recomputedLayers), MemoryLedger.human(auto.budgetBytes()), MemoryLedger.human(total))
                    : String.format("recompute auto: no number of recomputed layers fits the budget %s; with all %d the plan needs %s",
                            MemoryLedger.human(auto.budgetBytes()), layers, MemoryLedger.human(total));
        } else {
            recomputedLayers = settings.recompute().layersOf(layers);
            plans = tracer.trace(settings, recomputedLayers);
            recomputeNote = recomputedLayers == 0 ? "recompute: none"
                    : String.format("recompute: %d of %d layers (%s)", recomputedLayers, layers, layerList(recomputedLayers));
        }
        actPlan = plans.activations();
        lossPlan = plans.loss();
        actAlloc = memory.separate() ? new SeparateAllocator() : new PlannedAllocator(actPlan);
        lossAlloc = memory.separate() ? new SeparateAllocator() : new PlannedAllocator(lossPlan);
        long actBytes = memory.separate() ? SeparateAllocator.bytesFor(actPlan) : actPlan.size();
        long lossBytes = memory.separate() ? SeparateAllocator.bytesFor(lossPlan) : lossPlan.size();
        activations = new MemoryArena(ledger, "activations", MemoryCategory.ACTIVATIONS, settings.device(), actBytes, actAlloc)
                .poisonBookings(memory.poison());
        lossArena = new MemoryArena(ledger, "loss", MemoryCategory.LOSS, settings.device(), lossBytes, lossAlloc).poisonBookings(memory.poison());
    }

    private static String layerList(int k) {
        return k == 0 ? "none" : k == 1 ? "layer 0" : "layers 0-" + (k - 1);
    }

    /** Records one micro-step on META and plans both arenas. */
    public static StepPlans trace(Settings s, int recomputedLayers) {
        return trace(s, recomputedLayers, fusedAttention(s.device()));
    }

    /**
     * As {@link #trace(Settings, int)} with the attention path of a run on {@code runsOn}: a META plan of a run on another
     * device ({@code tally fit --device cuda} plans the probabilities CUDA keeps, where META alone plans the CPU's fused
     * attention).
     */
    public static StepPlans trace(Settings s, int recomputedLayers, Device runsOn) {
        return trace(s, recomputedLayers, fusedAttention(runsOn));
    }

    private static StepPlans trace(Settings s, int recomputedLayers, boolean fusedAttention) {
        StepTrace t = traceStep(s, recomputedLayers, fusedAttention);
        return new StepPlans(Planner.plan(t.activations()), Planner.plan(t.loss()));
    }

    /** The allocation and free events of one traced micro-step, per planned arena (what the plans are made from). */
    public record StepTrace(List<TracingAllocator.Event> activations, List<TracingAllocator.Event> loss) {}

    /** Records one micro-step of these settings on META, with the layers its recompute setting names (none for auto). */
    public static StepTrace traceStep(Settings s) {
        return traceStep(s, s.recompute() instanceof Recompute.Auto ? 0 : s.recompute().layersOf(s.config().layers()));
    }

    /** Records one micro-step on META (a twin model, its own scratch ledger) with the first {@code recomputedLayers} recomputed. */
    public static StepTrace traceStep(Settings s, int recomputedLayers) {
        return traceStep(s, recomputedLayers, fusedAttention(s.device()));
    }

    private static StepTrace traceStep(Settings s, int recomputedLayers, boolean fusedAttention) {
        MemoryLedger scratch = new MemoryLedger();
        TracingAllocator actTrace = new TracingAllocator(), lossTrace = new TracingAllocator();
        try (LlamaModel twin = new LlamaModel(s.config(), s.dtype(), Device.META, scratch, 0, s.weights());
             MemoryArena gradArena = new MemoryArena(scratch, "grads", MemoryCategory.GRADS, Device.META, 1L << 50);
             MemoryArena in = new MemoryArena(scratch, "inputs", MemoryCategory.ACTIVATIONS, Device.META, 1L << 50);
             MemoryArena acts = new MemoryArena(scratch, "activations", MemoryCategory.ACTIVATIONS, Device.META, 1L << 50, actTrace);
             MemoryArena loss = new MemoryArena(scratch, "loss", MemoryCategory.LOSS, Device.META, 1L << 50, lossTrace)) {
            Map<Parameter, Tensor> g = new IdentityHashMap<>();
            Tensor ids = in.allocate("ids", DType.I64, s.batch(), s.seq());
            Tensor targets = in.allocate("targets", DType.I64, s.tokensPerMicroBatch());
            Graph graph = new Graph(acts, loss, p -> g.computeIfAbsent(p, k -> gradArena.allocate("g", s.dtype(), k.value().shape())), true)
                    .fusedAttention(fusedAttention);
            Var lossVar = forwardLoss(graph, twin, LinearCrossEntropy.named(s.loss()), ids, targets, s, recomputedLayers, null);
            graph.backward(lossVar, 1.0);
            graph.close();
            return new StepTrace(actTrace.events(), lossTrace.events());
        }
    }

    private static Var forwardLoss(Graph g, LlamaModel model, LinearCrossEntropy lossFn, Tensor ids, Tensor targets, Settings s,
                                   int recomputedLayers, OpProfile profile) {
        Var hidden = model.forward(g, ids, s.batch(), s.seq(), recomputedLayers);
        Var head = g.param(model.parameter("lm_head.weight"));
        Var tgt = g.input(targets);
        return Functions.externalLoss(g, List.of(hidden, head, tgt), new Functions.ExternalLoss() {
            LinearCrossEntropy.Saved saved;

            @Override public void forward(Tensor loss) {
                phase(profile, "loss forward");
                saved = lossFn.forward(hidden.value(), head.value(), targets, loss, g.lossArena());
                phase(profile, "forward");
            }

            @Override public void backward(Tensor dLoss, Graph gr) {
                phase(profile, "loss backward");
                Tensor dE = Functions.gradOf(gr, hidden);
                // the loss adds into the head's gradient itself: no V×D temporary, no pass adding it (null when frozen)
                lossFn.backward(saved, dLoss, dE, head.requiresGrad() ? Functions.gradOf(gr, head) : null, gr.lossArena());
                phase(profile, "backward");
            }

            @Override public void discard() { saved.free(); }
        });
    }

    /** The system property that forces the attention path: {@code fused} or {@code materialized}. */
    public static final String ATTENTION_PROPERTY = "tally.attention";

    /**
     * Whether causal attention runs the fused op (the row log-sum-exp, O(B·H·T), saved instead of the [B, H, T, T]
     * probabilities). The default wherever the device has the kernel — the CPU, where it is also the faster path
     * (register-blocked tiles, fully masked tiles skipped), and META planning for it; CUDA has no fused kernel and keeps
     * the materialized path. {@code -Dtally.attention=materialized} forces the materialized path, {@code =fused} asks for
     * the fused one (ignored on CUDA); any other value is an error naming the property.
     */
    static boolean fusedAttention(Device device) {
        String mode = System.getProperty(ATTENTION_PROPERTY, "fused");
        return switch (mode) {
            case "fused" -> !(device instanceof Device.Cuda);
            case "materialized" -> false;
            default -> throw new IllegalArgumentException("system property " + ATTENTION_PROPERTY + ": expected fused or materialized, got '" + mode + "'");
        };
    }

    private static void phase(OpProfile profile, String name) {
        if (profile != null) profile.phase(name);
    }

    /**
     * Labels the ops of later steps by phase (forward, loss forward, loss backward, backward, optimizer) in
     * {@code profile}, which a {@link dev.tally.engine.profile.ProfilingOps} fills; null stops labelling.
     */
    public void setProfile(OpProfile profile) { this.profile = profile; }

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
        phase(profile, "forward");
        Graph g = new Graph(activations, lossArena, this::gradFor, last).fusedAttention(fusedAttention(s.device()));
        Var loss = forwardLoss(g, model, lossFn, ids, targets, s, recomputedLayers, profile);
        double value = loss.value().item();
        phase(profile, "backward");
        g.backward(loss, 1.0 / s.accumulation());
        g.close();
        phase(profile, "optimizer");
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
            requireFinite("gradient", true); // before the update, so a bad gradient never reaches the weights
            if (s.clipNorm() > 0) clipGradients(s.clipNorm());
            optimizer.step();
            optimizer.zeroGrad();
        } else if (s.accumulation() > 1) {
            grads.release(0); // all gradients were freed by their hooks; start the next step from an empty arena
        }
        requireFinite("weight", false); // a finite loss can still come with an update that overflowed
        optimizerSteps++;
        return sum / s.accumulation();
    }

    /** A step produced a NaN or infinite gradient or weight: the run diverged and its state must not be saved. */
    public static final class NonFiniteException extends IllegalStateException {
        NonFiniteException(String message) { super(message); }
    }

    /** Throws {@link NonFiniteException} naming the first parameter whose gradient (or weight) holds a NaN or ±inf. */
    private void requireFinite(String what, boolean gradients) {
        Tensor maxAbs = scratch.slice(0, 0, 1);
        for (Parameter p : model.parameters()) {
            Tensor x = gradients ? p.grad() : p.value();
            if (x == null) continue;
            x.ops().reduceAll(ReduceOp.MAX_ABS, x, maxAbs); // NaN anywhere gives NaN, ±inf gives inf
            double m = maxAbs.item();
            if (!Double.isFinite(m)) throw new NonFiniteException(what + " of '" + p.name() + "' became " + (Double.isNaN(m) ? "NaN" : "infinite"));
        }
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
        Graph g = new Graph(activations, lossArena, this::gradFor, false).fusedAttention(fusedAttention(s.device()));
        double value;
        try (AutoCloseable off = g.noGrad()) {
            value = forwardLoss(g, model, lossFn, ids, targets, s, recomputedLayers, null).value().item();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        g.close();
        return value;
    }

    /**
     * The final normalised hidden states [batch·seq, hidden] for {@code inputIds} (batch·seq ids), copied to the host:
     * the model's forward alone, on the planned arenas, without loss or gradients (sampling applies the head itself).
     */
    public float[] hiddenStates(long[] inputIds) {
        if (!s.device().hasMemory()) throw new IllegalStateException("a META trainer plans memory; it cannot run forward");
        ids.copyFrom(inputIds);
        actAlloc.reset();
        lossAlloc.reset();
        Graph g = new Graph(activations, lossArena, this::gradFor, false).fusedAttention(fusedAttention(s.device())); // as planned
        float[] out;
        try (AutoCloseable off = g.noGrad()) {
            out = model.forward(g, ids, s.batch(), s.seq()).value().toFloatArray();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        g.close();
        return out;
    }

    public Settings settings() { return s; }
    /** The loss in use (for reports: a {@link dev.tally.models.loss.CutCrossEntropy}'s filter statistics). */
    public LinearCrossEntropy lossFunction() { return lossFn; }
    public LlamaModel model() { return model; }
    public Optimizer optimizer() { return optimizer; }
    public MemoryLedger ledger() { return ledger; }
    public MemoryPlan activationPlan() { return actPlan; }
    public MemoryPlan lossPlan() { return lossPlan; }
    public MemoryArena activationArena() { return activations; }
    public MemoryArena lossArena() { return lossArena; }
    public MemoryArena gradArena() { return grads; }
    public int optimizerSteps() { return optimizerSteps; }
    /** Decoder layers recomputed in backward (layers 0 … n−1); an {@link Recompute.Auto} setting resolved. */
    public int recomputedLayers() { return recomputedLayers; }
    /** What recompute does in this run, in words (for {@code auto}: how many layers it chose and why). */
    public String recomputeNote() { return recomputeNote; }

    private StepPlans withoutRecompute;

    /** The step's plans without any recompute, for comparison (traced on first request when this run recomputes). */
    public StepPlans plansWithoutRecompute() {
        if (recomputedLayers == 0) return new StepPlans(actPlan, lossPlan);
        if (withoutRecompute == null) withoutRecompute = tracer.trace(s, 0);
        return withoutRecompute;
    }

    /** Each parameter group's learning rate in the last {@link #step} (base lr × that step's factor), as the optimizer used it. */
    public double[] lastLearningRates() { return lastLearningRates.clone(); }

    /** The plan users see before a run: bytes per category (as booked in this trainer's ledger) plus the largest activation buffers. */
    public String planReport() {
        Map<MemoryCategory, Long> bytes = new java.util.EnumMap<>(MemoryCategory.class);
        for (MemoryCategory c : MemoryCategory.values()) bytes.put(c, ledger.entry(s.device(), c).capacity());
        return report(s, optimizer.name(), bytes, actPlan, recomputeLines());
    }

    /** The report's recompute lines: the note, and with recomputed layers what they save. */
    private String recomputeLines() {
        StringBuilder b = new StringBuilder("  ").append(recomputeNote).append('\n');
        if (recomputedLayers > 0) {
            long without = plansWithoutRecompute().activations().size(), with = actPlan.size();
            b.append(String.format("  activation plan %s with recompute, %s without (%s saved)%n", MemoryLedger.human(with),
                    MemoryLedger.human(without), MemoryLedger.human(without - with)));
        }
        return b.toString();
    }

    private static String report(Settings s, String optimizerName, Map<MemoryCategory, Long> bytes, MemoryPlan actPlan, String recomputeLines) {
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
        b.append(recomputeLines);
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
