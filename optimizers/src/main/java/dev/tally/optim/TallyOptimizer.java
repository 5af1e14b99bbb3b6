package dev.tally.optim;

import dev.tally.autograd.Optimizer;
import dev.tally.autograd.Parameter;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every Tally optimizer: parameter groups, each with its own hyperparameters and whether the method's projection applies
 * (as torch.optim's param_groups), and per-parameter state. The work is split three ways: {@link StateBooking} books the
 * state from its specs in optimizer_state arenas and {@link WorkspacePlanner} sizes the one workspace arena by running
 * updates on META; {@link #step()} runs each parameter's {@link Updater} inside that workspace, allocating nothing else;
 * {@link StateDicts} writes and checks state dicts.
 */
public final class TallyOptimizer implements Optimizer {
    private final OptimizerKind kind;
    /** The optimizer-wide hyperparameters given at creation: every group's defaults (torch's {@code defaults}). */
    private final Map<String, Object> defaults;
    private final List<Group> groups = new ArrayList<>();
    private final List<Slot> slots = new ArrayList<>();
    private final Map<Parameter, Slot> byParam = new IdentityHashMap<>();
    private double lrScale = 1.0;
    private Projections projections = Projections.COMPUTED;
    private MemoryNeeds needs;

    // booked by allocateState (and by groups added afterwards)
    private MemoryLedger ledger;
    private final List<MemoryArena> stateArenas = new ArrayList<>();
    private Step.CodeMaps codes;
    private MemoryArena workspace;

    TallyOptimizer(OptimizerKind kind, Map<String, ?> defaults, List<ParamGroup> groups) {
        this.kind = kind;
        this.defaults = new LinkedHashMap<>(defaults);
        new Hyper(kind.userName(), kind.defaults(), defaults); // unknown keys fail here, even with no group yet
        List<Group> resolved = new ArrayList<>();
        for (ParamGroup g : groups) resolved.add(resolve(g, this.groups.size() + resolved.size(), resolved));
        for (Group g : resolved) adopt(g);
    }

    /** Checks a user's group against the method and the groups so far; books nothing. */
    private Group resolve(ParamGroup g, int index, List<Group> pending) {
        Map<String, Object> given = new LinkedHashMap<>(defaults);
        given.putAll(g.options());
        Hyper h = new Hyper(kind.userName(), kind.defaults(), given);
        String label = new Group(index, g.name(), List.of(), g.projected(), h).label();
        try {
            Optimizers.validate(kind, h);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage() + " (" + label + ")");
        }
        QuantizedWeightUpdater.validate(kind, g.params(), label);
        if (g.projected()) {
            if (!kind.projects()) throw new IllegalArgumentException(kind.userName() + " has no low-rank projection; use galore_* or apollo* (" + label + ")");
            int rank = h.i("rank");
            for (Parameter p : g.params()) {
                if (p.value().rank() != 2) throw new IllegalArgumentException(kind.userName() + ": cannot project " + p + " (not a matrix; " + label + ")");
                int small = Math.min(p.value().dim(0), p.value().dim(1));
                if (rank > small) {
                    throw new IllegalArgumentException(kind.userName() + ": rank " + rank + " exceeds the smaller dimension " + small
                            + " of " + p.name() + " " + p.value().shape() + " (" + label + ")");
                }
            }
        }
        for (Parameter p : g.params()) {
            boolean seen = byParam.containsKey(p) || pending.stream().anyMatch(o -> o.params().contains(p))
                    || g.params().stream().filter(q -> q == p).count() > 1;
            if (seen) throw new IllegalArgumentException(kind.userName() + ": parameter " + p.name() + " appears in more than one place (" + label + ")");
        }
        return new Group(index, g.name(), g.params(), g.projected(), h);
    }

    /** Builds the group's slots: APOLLO seeds parameters 1, 2, 3, ... across all groups, in the order they were added. */
    private List<Slot> adopt(Group g) {
        groups.add(g);
        List<Slot> added = new ArrayList<>();
        for (Parameter p : g.params()) {
            Slot s = new Slot(p, g, kind, slots.size() + 1);
            slots.add(s);
            byParam.put(p, s);
            added.add(s);
        }
        needs = null;
        return added;
    }

    /**
     * Adds a group, as torch's add_param_group: hyperparameters it does not set come from the optimizer's defaults. After
     * {@link #allocateState}, its state is booked at once in a new optimizer_state arena of the same ledger, and the
     * workspace grows if the group's update needs more.
     */
    public void addParamGroup(ParamGroup group) {
        Group g = resolve(group, groups.size(), List.of());
        if (ledger != null && !g.params().isEmpty() && g.params().get(0).value().device() != device()) {
            throw new IllegalArgumentException(kind.userName() + ": " + g.label() + " is on " + g.params().get(0).value().device()
                    + ", the optimizer's state on " + device());
        }
        List<Slot> added = adopt(g);
        if (ledger == null || added.isEmpty()) return;
        stateArenas.add(StateBooking.book(ledger, name() + ".state." + g.index(), device(), added, false).arena());
        long need = WorkspacePlanner.bytes(added, kind.usesCodeMaps());
        if (need > workspace.capacity()) {
            workspace.close();
            workspace = new MemoryArena(ledger, name() + ".workspace", MemoryCategory.WORKSPACE, device(), need);
        }
    }

    /**
     * Replaces computed projections (GaLore SVD bases, APOLLO random matrices) by supplied ones. A hook for the golden
     * replays (which inject the reference's matrices), not API: package-private, reached from the tests' own
     * {@code dev.tally.optim.ReplayAccess} on the class path.
     */
    TallyOptimizer withProjections(Projections projections) {
        this.projections = projections;
        return this;
    }

    @Override public String name() { return kind.userName(); }

    public OptimizerKind kind() { return kind; }

    @Override public List<Parameter> parameters() { return slots.stream().map(s -> s.param).toList(); }

    /** The groups as they are now (hyperparameters included, as a loaded state dict may have set them). */
    public List<ParamGroup> paramGroups() {
        return groups.stream().map(g -> new ParamGroup(g.name(), g.params(), g.projected(), g.hyper().asMap())).toList();
    }

    private Device device() {
        if (slots.isEmpty()) throw new IllegalStateException(name() + ": no parameters");
        return slots.get(0).param.value().device();
    }

    /** Bytes of optimizer state for every parameter, from shapes alone (what {@link #allocateState} books). */
    public long stateBytes() { return (kind.usesCodeMaps() ? StateBooking.codeMapBytes() : 0) + StateBooking.bytes(slots); }

    /** State specs per parameter name, for memory tables. */
    public Map<String, List<StateSpec>> stateSpecs() {
        Map<String, List<StateSpec>> m = new LinkedHashMap<>();
        for (Slot s : slots) m.put(s.param.name(), s.specs());
        return m;
    }

    @Override public MemoryNeeds memoryNeeds() {
        if (needs == null) needs = new MemoryNeeds(stateBytes(), WorkspacePlanner.bytes(slots, kind.usesCodeMaps()));
        return needs;
    }

    @Override public void allocateState(MemoryLedger ledger, MemoryNeeds planned) {
        if (this.ledger != null) return;
        if (planned.stateBytes() != stateBytes()) {
            throw new IllegalArgumentException(name() + ": planned for " + planned.stateBytes() + " B of optimizer state, but this optimizer's"
                    + " parameters and groups need " + stateBytes() + " B (was the plan made for another optimizer or grouping?)");
        }
        Device device = device();
        StateBooking.Booked b = StateBooking.book(ledger, name() + ".state", device, slots, kind.usesCodeMaps());
        stateArenas.add(b.arena());
        codes = b.codes();
        workspace = new MemoryArena(ledger, name() + ".workspace", MemoryCategory.WORKSPACE, device, planned.workspaceBytes());
        this.ledger = ledger;
    }

    // ------------------------------------------------------------------ stepping

    @Override public void step() {
        for (Slot s : slots) {
            if (s.param.grad() != null) update(s);
        }
    }

    @Override public void stepParameter(Parameter p) {
        Slot s = byParam.get(p);
        if (s == null) throw new IllegalArgumentException(name() + " does not optimize " + p.name());
        if (p.grad() == null) throw new IllegalStateException("stepParameter(" + p.name() + "): no gradient");
        update(s);
    }

    private double lr(Group g) {
        return (g.hyper().isNull("lr") ? 1.0 : g.hyper().d("lr")) * lrScale;
    }

    private void update(Slot s) {
        if (ledger == null) throw new IllegalStateException(name() + ": call allocateState(ledger) before the first step");
        Tensor w = s.param.value(), g = s.param.grad();
        Group group = s.group();
        try (var scope = workspace.scope()) {
            Step ctx = new Step(w.ops(), workspace, group.hyper(), lr(group), s.state, w, codes, projections);
            s.updater().update(ctx, s.param, w, g);
        }
    }

    @Override public void zeroGrad() {
        for (Slot s : slots) {
            Tensor g = s.param.grad();
            if (g != null) g.ops().fill(g, 0);
        }
    }

    @Override public void setLrScale(double factor) {
        if (!(factor >= 0)) throw new IllegalArgumentException("learning-rate scale must be >= 0, got " + factor);
        lrScale = factor;
    }

    public double lrScale() { return lrScale; }

    /**
     * Each group's learning rate as the next step uses it: base lr × the schedule's factor. A group without an lr
     * (Adafactor's relative step) reports the factor its computed step size is multiplied by.
     */
    @Override public double[] learningRates() {
        return groups.stream().mapToDouble(this::lr).toArray();
    }

    /** Steps taken by a parameter (for tests and checkpoints). */
    public long stepOf(Parameter p) { return byParam.get(p).state.step; }

    // ------------------------------------------------------------------ state dicts

    @Override public StateDict stateDict() {
        if (ledger == null) throw new IllegalStateException(name() + ": no state booked yet");
        return StateDicts.write(kind, groups, slots, lrScale);
    }

    @Override public void loadStateDict(StateDict state) {
        if (ledger == null) throw new IllegalStateException(name() + ": call allocateState before loadStateDict");
        StateDicts.Checked c = StateDicts.check(state, kind, groups, slots);
        for (Slot s : slots) s.state.tensors.forEach((k, t) -> t.ops().copy(state.tensors().get(s.param.name() + "." + k), t));
        c.counters().forEach((s, v) -> {
            s.state.step = v[0];
            s.state.refreshes = v[1];
            s.state.seed = v[2];
        });
        for (int i = 0; i < groups.size(); i++) {
            Group g = groups.get(i).withHyper(c.hypers().get(i));
            groups.set(i, g);
            for (Slot s : slots) if (s.group().index() == i) s.rebind(g, kind);
        }
        lrScale = c.lrScale();
    }

    @Override public void close() {
        if (workspace != null) workspace.close();
        for (MemoryArena a : stateArenas) a.close();
    }

    @Override public String toString() { return "TallyOptimizer[" + name() + ", " + groups.size() + " groups, " + slots.size() + " parameters]"; }
}
