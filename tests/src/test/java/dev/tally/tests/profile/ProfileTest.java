package dev.tally.tests.profile;

import dev.tally.autograd.Parameter;
import dev.tally.engine.Backends;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.profile.OpProfile;
import dev.tally.engine.profile.ProfilingOps;
import dev.tally.models.llama.LlamaConfig;
import dev.tally.models.train.Trainer;
import dev.tally.optim.Optimizers;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code tally bench --profile}: the per-op table covers every phase of a step and does not change a single bit. */
class ProfileTest {
    private static Trainer trainer(String loss) {
        Trainer.Settings s = new Trainer.Settings(LlamaConfig.named("tiny"), DType.F32, 2, 16, 1, loss, false, Device.CPU, 3, 0);
        Map<String, Object> h = new HashMap<>(Map.of("lr", 1e-3, "weight_decay", 0.1));
        return new Trainer(s, params -> Optimizers.create("adamw", h, params), new MemoryLedger());
    }

    private static long[][] tokens(int salt) {
        long[] ids = new long[32];
        for (int i = 0; i < ids.length; i++) ids[i] = (i * 31L + salt * 7L) % 256;
        return new long[][] {ids};
    }

    private static List<float[]> weights(Trainer t) {
        return t.model().parameters().stream().map(Parameter::value).map(v -> v.toFloatArray()).toList();
    }

    /** A default method it did not override would run as its composition when profiled: other kernels, other bits. */
    @Test
    void theProfilerForwardsEveryOpIncludingTheDefaultOnes() {
        for (java.lang.reflect.Method m : dev.tally.engine.Ops.class.getMethods()) {
            if (java.lang.reflect.Modifier.isStatic(m.getModifiers())) continue;
            try {
                ProfilingOps.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
            } catch (NoSuchMethodException e) {
                org.junit.jupiter.api.Assertions.fail("ProfilingOps does not forward Ops." + m.getName());
            }
        }
    }

    @Test
    void profiledStepsGiveTheSameBitsAndEveryPhase() throws Exception {
        for (String loss : new String[] {"ce", "cce"}) {
            OpProfile p = new OpProfile();
            double plainLoss, profiledLoss;
            List<float[]> plain, profiled;
            try (Trainer a = trainer(loss)) {
                plainLoss = a.step(tokens(0), tokens(1), 1.0) + a.step(tokens(2), tokens(3), 1.0);
                plain = weights(a);
            }
            try (Trainer b = trainer(loss)) {
                b.setProfile(p);
                try (AutoCloseable on = Backends.profile(Device.CPU, p)) {
                    assertInstanceOf(ProfilingOps.class, Backends.of(Device.CPU).ops());
                    long t0 = System.nanoTime();
                    profiledLoss = b.step(tokens(0), tokens(1), 1.0) + b.step(tokens(2), tokens(3), 1.0);
                    p.addSteps(2, System.nanoTime() - t0);
                }
                profiled = weights(b);
            }
            assertFalse(Backends.of(Device.CPU).ops() instanceof ProfilingOps, "closing the handle restores the plain ops");
            // ProfilingOps hands every call unchanged to the CPU kernels. Two plain runs in one JVM can still differ in the
            // last bit while some fast paths depend on the JIT tier (being fixed separately), so the comparison allows
            // rounding-level differences only: a profiler that changed what ran would be far outside it.
            assertEquals(plainLoss, profiledLoss, 1e-6 * Math.abs(plainLoss), loss);
            for (int i = 0; i < plain.size(); i++) {
                float[] x = plain.get(i), y = profiled.get(i);
                for (int j = 0; j < x.length; j++) {
                    // AdamW moves each weight by up to lr = 1e-3 per step; allow a thousandth of that
                    assertEquals(x[j], y[j], 1e-6, loss + " parameter " + i + " element " + j);
                }
            }
            Set<String> phases = p.entries().stream().map(e -> e.phase).collect(Collectors.toSet());
            assertTrue(phases.containsAll(Set.of("forward", "loss forward", "loss backward", "backward", "optimizer")), phases.toString());
            assertTrue(p.entries().stream().anyMatch(e -> e.op.startsWith("matmul") && e.flops() > 0 && e.bytes() > 0));
            assertTrue(p.opNanos() > 0);
            String report = p.report(10);
            System.out.print(report);
            assertTrue(report.contains("outside ops") && report.contains("loss backward"), report);
            assertTrue(Arrays.stream(report.split("\n")).filter(l -> l.startsWith("  ") && !l.startsWith("    ")).count() >= 10, report);
        }
    }
}
