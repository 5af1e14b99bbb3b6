package dev.tally.engine.ops;

import dev.tally.engine.AdamStep;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Ops;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Reference;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.Views;
import dev.tally.engine.testing.Views.Layout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;

import static dev.tally.engine.testing.Reference.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Ops#adamStep}: the CPU's fused kernel gives the bits of the op's definition (the composition of primitives,
 * run through a proxy that has no fused kernel) for lengths around the vector width and the thread split, both AdamW
 * flavours and edge scalars; both agree with a float64 reference; strided and bf16 operands take the composition.
 */
class AdamStepOpsTest {

    /** torch-style (bias-corrected denominator, decay before) and HF-style (decay after) steps, and edge cases. */
    static List<AdamStep> steps() {
        double b1 = 0.9, b2 = 0.999, lr = 1e-3;
        List<AdamStep> s = new ArrayList<>();
        for (int t : new int[] {1, 7, 1000}) {
            double bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
            s.add(new AdamStep(b1, b2, 1e-8, Math.sqrt(bc2), lr / bc1, 1 - lr * 0.1, 0));
            s.add(new AdamStep(b1, b2, 1e-6, 1, lr * Math.sqrt(bc2) / bc1, 1, -lr * 0.01));
        }
        s.add(new AdamStep(0.5, 0.25, 0.5, 1, 0.125, 1, 0));                 // scalars exact in fp32
        s.add(new AdamStep(0.95, 0.95, 1e-8, 2.0, 3e-4, 0.75, -0.25));       // both decays at once
        return s;
    }

    static int[] lengths() {
        return new int[] {1, 7, 15, 16, 17, 31, 33, 100, 65536, 65536 + 13, 3 * 65536 + 40, 200_003};
    }

    /** The same CPU ops, but adamStep is the interface's definition: every primitive goes to the CPU backend. */
    static Ops composedOnly(Ops cpu) {
        InvocationHandler h = (proxy, method, args) -> {
            if (method.getName().equals("adamStep")) return InvocationHandler.invokeDefault(proxy, method, args);
            try {
                return method.invoke(cpu, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        };
        return (Ops) Proxy.newProxyInstance(Ops.class.getClassLoader(), new Class<?>[] {Ops.class}, h);
    }

    private record Operands(Tensor w, Tensor g, Tensor m, Tensor v, Tensor scratch) {
        static Operands of(MemoryArena a, DType dt, Shape shape, double[] w, double[] g, double[] m, double[] v, Layout layout) {
            return new Operands(Views.of(a, "w", dt, shape, w, layout), Views.of(a, "g", dt, shape, g, layout),
                    Views.of(a, "m", dt, shape, m, layout), Views.of(a, "v", dt, shape, v, layout),
                    Views.empty(a, "scratch", DType.F32, shape, Layout.CONTIGUOUS));
        }

        /** bf16 training's state: weight and gradient bf16, moments fp32, all contiguous. */
        static Operands bf16Weights(MemoryArena a, Shape shape, double[] w, double[] g, double[] m, double[] v) {
            return new Operands(Views.of(a, "w", DType.BF16, shape, w, Layout.CONTIGUOUS), Views.of(a, "g", DType.BF16, shape, g, Layout.CONTIGUOUS),
                    Views.of(a, "m", DType.F32, shape, m, Layout.CONTIGUOUS), Views.of(a, "v", DType.F32, shape, v, Layout.CONTIGUOUS),
                    Views.empty(a, "scratch", DType.F32, shape, Layout.CONTIGUOUS));
        }

        void step(Ops ops, AdamStep s) { ops.adamStep(s, w, g, m, v, scratch); }
    }

    /**
     * One step per gradient (each from the previous one's state) on both operand sets, the fused CPU kernel against the
     * composition; w, exp_avg and exp_avg_sq must then hold the same bits.
     */
    private static void assertStepsMatch(Ops cpu, Ops composed, AdamStep s, Operands fused, Operands ref, double[][] grads, String what) {
        for (double[] g : grads) {
            Views.write(fused.g, g);
            Views.write(ref.g, g);
            fused.step(cpu, s);
            ref.step(composed, s);
        }
        assertArrayEquals(Views.read(ref.w), Views.read(fused.w), "w, " + what);
        assertArrayEquals(Views.read(ref.m), Views.read(fused.m), "exp_avg, " + what);
        assertArrayEquals(Views.read(ref.v), Views.read(fused.v), "exp_avg_sq, " + what);
    }

    @Test
    void fusedCpuKernelGivesTheBitsOfTheComposition() {
        Ops cpu = Backends.of(Device.CPU).ops(), composed = composedOnly(cpu);
        SeededRandom r = new SeededRandom(5);
        for (int n : lengths()) {
            Shape shape = Shape.of(n);
            double[] w = r.normal(n, 0.5), m = r.normal(n, 1e-3), v = r.uniform(n, 0, 1e-5);
            double[][] grads = {r.normal(n, 1e-2), r.normal(n, 3.0)};
            grads[1][0] = 0; // an exactly zero gradient and moment
            m[0] = 0;
            for (AdamStep s : steps()) {
                try (MemoryArena arena = TestArenas.open(Device.CPU, 12L * 4 * n + (1 << 16))) {
                    Operands fused = Operands.of(arena, DType.F32, shape, w, grads[0], m, v, Layout.CONTIGUOUS);
                    Operands ref = Operands.of(arena, DType.F32, shape, w, grads[0], m, v, Layout.CONTIGUOUS);
                    assertStepsMatch(cpu, composed, s, fused, ref, grads, "n=" + n + " " + s); // two steps in a row
                }
            }
        }
    }

    /** Both paths against the update computed in double from the same fp32 inputs. */
    @ParameterizedTest
    @MethodSource("steps")
    void matchesAFloat64Reference(AdamStep s) {
        Ops cpu = Backends.of(Device.CPU).ops();
        SeededRandom r = new SeededRandom(9);
        int n = 65536 + 21;
        double[] w = round(r.normal(n, 0.5)), g = round(r.normal(n, 1e-2)), m = round(r.normal(n, 1e-3)), v = round(r.uniform(n, 0, 1e-5));
        double[] ew = new double[n], em = new double[n], ev = new double[n];
        for (int i = 0; i < n; i++) {
            double wi = w[i] * s.decayBefore();
            em[i] = s.beta1() * m[i] + (1 - s.beta1()) * g[i];
            ev[i] = s.beta2() * v[i] + (1 - s.beta2()) * g[i] * g[i];
            wi -= s.stepSize() * em[i] / (Math.sqrt(ev[i]) / s.denominatorDivisor() + s.eps());
            ew[i] = wi + s.decayAfter() * wi;
        }
        for (Ops ops : new Ops[] {cpu, composedOnly(cpu)}) {
            try (MemoryArena arena = TestArenas.open(Device.CPU, 6L * 4 * n + (1 << 16))) {
                Operands o = Operands.of(arena, DType.F32, Shape.of(n), w, g, m, v, Layout.CONTIGUOUS);
                o.step(ops, s);
                // absolute floors at a few fp32 ulps of the terms' magnitudes (m ~ 1e-3, v ~ 1e-5, w ~ 0.5): the moments'
                // sums cancel to values far below their terms
                assertClose(em, Views.read(o.m), 1e-6, 1e-9, "exp_avg " + s);
                assertClose(ev, Views.read(o.v), 1e-6, 1e-12, "exp_avg_sq " + s);
                assertClose(ew, Views.read(o.w), 1e-6, 1e-7, "w " + s);
            }
        }
    }

    /**
     * bf16 weight and gradient with fp32 moments (bf16 training's default state): the fused pass gives the composition's
     * bits — whose ops with a bf16 operand take the element-by-element double path — over lengths around the vector width
     * and the thread split, every step flavour, two steps in a row, with exact zeros.
     */
    @Test
    void bf16WeightsWithFp32MomentsGiveTheBitsOfTheComposition() {
        Ops cpu = Backends.of(Device.CPU).ops(), composed = composedOnly(cpu);
        SeededRandom r = new SeededRandom(29);
        for (int n : lengths()) {
            Shape shape = Shape.of(n);
            double[] w = r.normal(n, 0.5), m = r.normal(n, 1e-3), v = r.uniform(n, 0, 1e-5);
            double[][] grads = {r.normal(n, 1e-2), r.normal(n, 3.0)};
            grads[1][0] = 0;
            m[0] = 0;
            w[n - 1] = 0;
            for (AdamStep s : steps()) {
                try (MemoryArena arena = TestArenas.open(Device.CPU, 14L * 4 * n + (1 << 16))) {
                    Operands fused = Operands.bf16Weights(arena, shape, w, grads[0], m, v), ref = Operands.bf16Weights(arena, shape, w, grads[0], m, v);
                    assertStepsMatch(cpu, composed, s, fused, ref, grads, "n=" + n + " " + s);
                }
            }
        }
    }

    /**
     * A first step whose update nearly cancels the weight (w within 2^-9 of the step it takes, as when a bf16 weight of
     * ±lr meets Adam's first ±lr step): the result keeps the low bits of every intermediate rounding, so an operation
     * done in another precision (a float quotient computed in double, say) shows in the bf16 weight.
     */
    @Test
    void bf16WeightsNearlyCancelledByTheirFirstStepGiveTheBitsOfTheComposition() {
        Ops cpu = Backends.of(Device.CPU).ops(), composed = composedOnly(cpu);
        SeededRandom r = new SeededRandom(31);
        int n = 4096 + 5;
        Shape shape = Shape.of(n);
        double[] g = r.normal(n, 1e-2), zeros = new double[n], noise = r.uniform(n, -1, 1);
        for (AdamStep s : steps()) {
            double[] w = new double[n];
            for (int i = 0; i < n; i++) {
                double gb = Reference.round(DType.BF16, new double[] {g[i]})[0];
                double mi = (1 - s.beta1()) * gb, vi = (1 - s.beta2()) * gb * gb;
                double d = s.stepSize() * mi / (Math.sqrt(vi) / s.denominatorDivisor() + s.eps());
                w[i] = d / s.decayBefore() * (1 + noise[i] / 512);
            }
            try (MemoryArena arena = TestArenas.open(Device.CPU, 14L * 4 * n + (1 << 16))) {
                Operands fused = Operands.bf16Weights(arena, shape, w, g, zeros, zeros), ref = Operands.bf16Weights(arena, shape, w, g, zeros, zeros);
                assertStepsMatch(cpu, composed, s, fused, ref, new double[][] {g}, s.toString());
            }
        }
    }

    /** Operands the kernel does not take (strided views, bf16 state) are updated by the composition, bit for bit. */
    @Test
    void stridedAndBf16OperandsTakeTheComposition() {
        Ops cpu = Backends.of(Device.CPU).ops(), composed = composedOnly(cpu);
        SeededRandom r = new SeededRandom(13);
        Shape shape = Shape.of(37, 41);
        int n = 37 * 41;
        double[] w = r.normal(n, 0.5), g = r.normal(n, 1e-2), m = r.normal(n, 1e-3), v = r.uniform(n, 0, 1e-5);
        AdamStep s = steps().get(0);
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (Layout layout : Layout.values()) {
                try (MemoryArena arena = TestArenas.open(Device.CPU, 1 << 20)) {
                    Operands a = Operands.of(arena, dt, shape, w, g, m, v, layout), b = Operands.of(arena, dt, shape, w, g, m, v, layout);
                    assertStepsMatch(cpu, composed, s, a, b, new double[][] {g}, dt + " " + layout);
                }
            }
        }
    }

    @Test
    void shapeMismatchesAreNamedOnEveryDevice() {
        for (Device device : new Device[] {Device.CPU, Device.META}) {
            Ops ops = Backends.of(device).ops();
            try (MemoryArena arena = TestArenas.open(device, 1 << 16)) {
                Tensor w = arena.allocate("w", DType.F32, 4, 3), g = arena.allocate("g", DType.F32, 4, 3);
                Tensor m = arena.allocate("m", DType.F32, 3, 4), v = arena.allocate("v", DType.F32, 4, 3);
                Tensor scratch = arena.allocate("scratch", DType.F32, 4, 3);
                var e = assertThrows(IllegalArgumentException.class, () -> ops.adamStep(steps().get(0), w, g, m, v, scratch));
                assertTrue(e.getMessage().contains("adamStep") && e.getMessage().contains("exp_avg"), e.getMessage());
            }
        }
    }

    @Test
    void aNonPositiveDivisorIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new AdamStep(0.9, 0.999, 1e-8, 0, 1e-3, 1, 0));
    }

    private static double[] round(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) y[i] = (float) x[i];
        return y;
    }
}
