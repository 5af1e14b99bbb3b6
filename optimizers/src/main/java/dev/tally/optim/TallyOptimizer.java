package dev.tally.optim;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.Arena;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every Tally optimizer: parameter groups (each with its hyperparameters and update path), per-parameter state booked
 * up front in one optimizer_state arena sized from the state specs, and one workspace arena sized by dry-running each
 * parameter's update on META. {@link #step()} allocates nothing outside that workspace, and releases it after each
 * parameter.
 */
public final class TallyOptimizer implements Optimizer {
    /** The run's ledger, from {@link #allocateState}: every arena of this optimizer books there. */
    private MemoryLedger ledger;

    /** A parameter group: its parameters and how they are updated. */
    record Group(List<Parameter> params, Hyper hyper, boolean projected) {}

    private final class Slot {
        final Parameter param;
        final Group group;
        final Updater updater;
        final ParamState state = new ParamState();

        Slot(Parameter param, Group group, Updater updater) {
            this.param = param;
            this.group = group;
            this.updater = updater;
        }
    }

    private final OptimizerKind kind;
    private final List<Group> groups;
    private final Map<Parameter, Slot> slots = new IdentityHashMap<>();
    private final List<Slot> order = new ArrayList<>();
    private Arena stateArena;
    private Arena workspace;
    private Tensor qmapSigned;
    private Tensor qmapUnsigned;
    private double lrScale = 1.0;
    private Projections projections = Projections.COMPUTED;
    private Arena counters;
    private final Map<Parameter, Tensor> counterTensors = new IdentityHashMap<>();

    TallyOptimizer(OptimizerKind kind, List<Group> groups) {
        this.kind = kind;
        this.groups = groups;
        long seed = 1; // APOLLO seeds parameters 1, 2, 3, ... across all groups, in order
        for (Group g : groups) {
            for (Parameter p : g.params()) {
                if (slots.containsKey(p)) throw new IllegalArgumentException("parameter " + p.name() + " appears in two groups");
                Slot s = new Slot(p, g, null);
                s.state.seed = seed++;
                slots.put(p, s);
                order.add(s);
            }
        }
    }

    /** Replaces computed projections (GaLore SVD bases, APOLLO random matrices) by supplied ones; for replay tests. */
    public TallyOptimizer withProjections(Projections projections) {
        this.projections = projections;
        return this;
    }

    @Override public String name() { return kind.userName(); }

    public OptimizerKind kind() { return kind; }

    @Override public List<Parameter> parameters() {
        return order.stream().map(s -> s.param).toList();
    }

    private Device device() {
        if (order.isEmpty()) throw new IllegalStateException(name() + ": no parameters");
        return order.get(0).param.value().device();
    }

    private Updater updaterFor(Slot s) {
        return QuantizedWeightUpdater.wrapIfQuantized(s.param, baseUpdaterFor(s), s.group.hyper());
    }

    private Updater baseUpdaterFor(Slot s) {
        Hyper h = s.group.hyper();
        Shape shape = s.param.value().shape();
        if (!s.group.projected()) return new Updater.Plain(rule(h, false), specsFor(h, shape));
        int rank = h.i("rank"), gap = h.i("update_proj_gap");
        return switch (kind.projection()) {
            case SVD -> {
                Shape low = GaloreUpdater.lowRankShape(shape, rank);
                if (kind == OptimizerKind.Q_GALORE_ADAMW8BIT) {
                    yield new QGaloreUpdater(rule(h, true), specsFor(h, low), shape, h, slotProjections());
                }
                yield new GaloreUpdater(rule(h, true), specsFor(h, low), shape, rank, gap, h.d("scale"), slotProjections());
            }
            case RANDOM -> new ApolloUpdater(rank, gap, h.s("scale_type").equals("channel"), slotProjections());
            case NONE -> throw new IllegalStateException(kind + " has no projection");
        };
    }

    private Projections slotProjections() { return (p, k) -> projections.supplied(p, k); }

    private Rule rule(Hyper h, boolean underGalore) {
        return switch (kind) {
            case ADAMW -> new AdamWRule(AdamWRule.Flavor.TORCH, DType.parse(h.s("state_dtype")));
            case GALORE_ADAMW, APOLLO, APOLLO_MINI, Q_APOLLO, Q_APOLLO_MINI -> new AdamWRule(AdamWRule.Flavor.HF, DType.F32);
            case ADAFACTOR, GALORE_ADAFACTOR -> new AdafactorRule();
            case CAME -> new CameRule();
            case ADAMW8BIT, GALORE_ADAMW8BIT, Q_GALORE_ADAMW8BIT -> new Adam8bitRule(underGalore, qmapSigned, qmapUnsigned);
        };
    }

    private List<StateSpec> specsFor(Hyper h, Shape g) {
        return switch (kind) {
            case ADAFACTOR, GALORE_ADAFACTOR -> AdafactorRule.withMomentum(new AdafactorRule().specs(g), g, !h.isNull("beta1"));
            case ADAMW8BIT, GALORE_ADAMW8BIT, Q_GALORE_ADAMW8BIT -> Adam8bitRule.specs(g, h);
            default -> rule(h, false).specs(g);
        };
    }

    private boolean usesCodeMaps() {
        return kind == OptimizerKind.ADAMW8BIT || kind == OptimizerKind.GALORE_ADAMW8BIT || kind == OptimizerKind.Q_GALORE_ADAMW8BIT;
    }

    /** Bytes of optimizer state for every parameter, from shapes alone (what {@link #allocateState} books). */
    public long stateBytes() {
        long total = usesCodeMaps() ? 2 * Arena.bookedBytes(DType.F32, Shape.of(256)) : 0;
        for (Slot s : order) {
            for (StateSpec spec : updaterFor(s).specs(s.param.value().shape())) total += spec.bookedBytes();
        }
        return total;
    }

    /** State specs per parameter name, for memory tables. */
    public Map<String, List<StateSpec>> stateSpecs() {
        Map<String, List<StateSpec>> m = new LinkedHashMap<>();
        for (Slot s : order) m.put(s.param.name(), updaterFor(s).specs(s.param.value().shape()));
        return m;
    }

    @Override public void allocateState(MemoryLedger ledger) {
        if (stateArena != null) return;
        this.ledger = ledger; // the checkpoint counters are booked here too, when first asked for
        Device device = device();
        stateArena = new Arena(ledger, name() + ".state", MemoryCategory.OPTIMIZER_STATE, device, stateBytes());
        if (usesCodeMaps()) {
            qmapSigned = stateArena.allocate("optimizer.qmap_signed", DType.F32, 256);
            qmapUnsigned = stateArena.allocate("optimizer.qmap_unsigned", DType.F32, 256);
            if (device.hasMemory()) {
                qmapSigned.copyFrom(DynamicMap.create(true));
                qmapUnsigned.copyFrom(DynamicMap.create(false));
            }
        }
        List<Slot> built = new ArrayList<>();
        for (Slot s : order) {
            Slot b = new Slot(s.param, s.group, updaterFor(s));
            b.state.seed = s.state.seed;
            for (StateSpec spec : b.updater.specs(s.param.value().shape())) {
                Tensor t = stateArena.allocate("optimizer." + spec.kind().name().toLowerCase() + "." + s.param.name() + "." + spec.name(),
                        spec.dtype(), spec.shape());
                t.ops().fill(t, 0);
                b.state.tensors.put(spec.name(), t);
            }
            built.add(b);
        }
        order.clear();
        slots.clear();
        for (Slot b : built) {
            order.add(b);
            slots.put(b.param, b);
        }
        workspace = new Arena(ledger, name() + ".workspace", MemoryCategory.WORKSPACE, device, workspaceBytes());
    }

    /** The largest workspace any parameter's update needs, found by running that update on META (same code path). */
    private long workspaceBytes() {
        Projections saved = projections;
        projections = Projections.COMPUTED; // supplied matrices are host data; the dry run only needs the shapes
        try {
            return dryRunWorkspace();
        } finally {
            projections = saved;
        }
    }

    private long dryRunWorkspace() {
        long worst = 0;
        MemoryLedger scratch = new MemoryLedger();
        for (Slot s : order) {
            for (long step : new long[] {0, 1}) { // step 0 takes the refresh path, step 1 the limiter path
                try (Arena meta = new Arena(scratch, "dry-run", MemoryCategory.OTHER, Device.META, 1L << 50);
                     Arena ws = new Arena(scratch, "dry-run-ws", MemoryCategory.WORKSPACE, Device.META, 1L << 50)) {
                    Parameter twin = QuantizedWeightUpdater.metaTwin(s.param, meta); // same storage format, on META
                    Tensor w = twin.value();
                    Tensor g = meta.allocate("g", s.param.dtype(), s.param.value().shape());
                    ParamState st = new ParamState();
                    st.step = step;
                    st.refreshes = step;
                    for (StateSpec spec : s.updater.specs(w.shape())) st.tensors.put(spec.name(), meta.allocate(spec.name(), spec.dtype(), spec.shape()));
                    Hyper h = s.group.hyper();
                    Updater u = dryRunUpdater(s, meta);
                    u.update(new Step(w.ops(), ws, h, 1.0, st, w), twin, w, g);
                    worst = Math.max(worst, ws.highWater());
                }
            }
        }
        return worst;
    }

    /** The slot's updater, with META code maps for 8-bit rules (which hold device tensors). */
    private Updater dryRunUpdater(Slot s, Arena meta) {
        if (!usesCodeMaps()) return s.updater;
        Tensor q1 = qmapSigned, q2 = qmapUnsigned;
        qmapSigned = meta.allocate("q1", DType.F32, 256);
        qmapUnsigned = meta.allocate("q2", DType.F32, 256);
        try {
            return updaterFor(s);
        } finally {
            qmapSigned = q1;
            qmapUnsigned = q2;
        }
    }

    private double lr(Group g) {
        return (g.hyper().isNull("lr") ? 1.0 : g.hyper().d("lr")) * lrScale;
    }

    @Override public void step() {
        for (Slot s : order) {
            if (s.param.grad() != null) update(s);
        }
    }

    @Override public void stepParameter(Parameter p) {
        Slot s = slots.get(p);
        if (s == null) throw new IllegalArgumentException(name() + " does not optimize " + p.name());
        if (p.grad() == null) throw new IllegalStateException("stepParameter(" + p.name() + "): no gradient");
        update(s);
    }

    private void update(Slot s) {
        if (stateArena == null) throw new IllegalStateException(name() + ": call allocateState(ledger) before the first step");
        Tensor w = s.param.value(), g = s.param.grad();
        Ops ops = w.ops();
        try (var scope = workspace.scope()) {
            s.updater.update(new Step(ops, workspace, s.group.hyper(), lr(s.group), s.state, w), s.param, w, g);
        }
    }

    @Override public void zeroGrad() {
        for (Slot s : order) {
            Tensor g = s.param.grad();
            if (g != null) g.ops().fill(g, 0);
        }
    }

    @Override public void setLrScale(double factor) {
        if (!(factor >= 0)) throw new IllegalArgumentException("learning-rate scale must be >= 0, got " + factor);
        lrScale = factor;
    }

    public double lrScale() { return lrScale; }

    /** Steps taken by a parameter (for tests and checkpoints). */
    public long stepOf(Parameter p) { return slots.get(p).state.step; }

    @Override public Map<String, Tensor> stateDict() {
        if (stateArena == null) throw new IllegalStateException(name() + ": no state booked yet");
        Map<String, Tensor> out = new LinkedHashMap<>();
        if (counters == null) { // host copies of the scalar state, booked once (one 256-byte block per parameter)
            // host copies on a device with memory; on META (a plan checking a checkpoint) they take no bytes either
            counters = new Arena(ledger, name() + ".counters", MemoryCategory.OTHER, device().hasMemory() ? Device.CPU : Device.META,
                    order.size() * Arena.ALIGNMENT);
            for (Slot s : order) counterTensors.put(s.param, counters.allocate(s.param.name() + ".counters", DType.I64, 3));
        }
        for (Slot s : order) {
            s.state.tensors.forEach((k, t) -> out.put(s.param.name() + "." + k, t));
            Tensor c = counterTensors.get(s.param);
            c.copyFrom(new long[] {s.state.step, s.state.refreshes, s.state.seed});
            out.put(s.param.name() + ".counters", c);
        }
        return out;
    }

    @Override public void loadStateDict(Map<String, Tensor> state) {
        if (stateArena == null) throw new IllegalStateException(name() + ": call allocateState before loadStateDict");
        Map<String, Tensor> mine = new LinkedHashMap<>();
        for (Slot s : order) s.state.tensors.forEach((k, t) -> mine.put(s.param.name() + "." + k, t));
        for (Map.Entry<String, Tensor> e : mine.entrySet()) {
            Tensor src = state.get(e.getKey());
            if (src == null) throw new IllegalArgumentException(name() + " state dict lacks '" + e.getKey() + "'");
            if (src.dtype() != e.getValue().dtype() || !src.shape().equals(e.getValue().shape())) {
                throw new IllegalArgumentException(name() + " state '" + e.getKey() + "' is " + src.dtype() + src.shape()
                        + ", expected " + e.getValue().dtype() + e.getValue().shape());
            }
        }
        for (Slot s : order) {
            Tensor c = state.get(s.param.name() + ".counters");
            if (c == null || c.numel() != 3) throw new IllegalArgumentException(name() + " state dict lacks '" + s.param.name() + ".counters'");
        }
        for (String k : state.keySet()) {
            if (!mine.containsKey(k) && !k.endsWith(".counters")) throw new IllegalArgumentException(name() + ": unexpected state '" + k + "'");
        }
        mine.forEach((k, t) -> t.ops().copy(state.get(k), t));
        for (Slot s : order) {
            long[] c = state.get(s.param.name() + ".counters").toLongArray();
            s.state.step = c[0];
            s.state.refreshes = c[1];
            s.state.seed = c[2];
        }
    }

    @Override public void close() {
        for (Arena a : new Arena[] {counters, workspace, stateArena}) if (a != null) a.close();
    }

    @Override public String toString() { return "TallyOptimizer[" + name() + ", " + order.size() + " parameters]"; }
}
