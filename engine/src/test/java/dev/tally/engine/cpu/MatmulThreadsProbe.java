package dev.tally.engine.cpu;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryArena;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.TestArenas;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * Child-process side of {@link MatmulThreadsTest} (started with {@code -Dtally.cpu.threads=2}): every product of
 * {@link MatmulBenchmark#TRAINING} on one thread and on two, printing {@code RESULT case same|differs maxRelErr} where
 * maxRelErr compares sampled outputs with a float64 sum.
 */
public final class MatmulThreadsProbe {
    private MatmulThreadsProbe() {}

    public static void main(String[] args) {
        System.out.println("THREADS " + CpuThreads.count());
        for (MatmulBenchmark.Case c : MatmulBenchmark.TRAINING) {
            long elems = (long) c.batch() * ((long) c.m() * c.k() + (long) c.k() * c.n() + 3L * c.m() * c.n());
            try (MemoryArena arena = TestArenas.open(Device.CPU, 4 * elems + (1 << 20))) {
                Tensor a = c.transA() ? arena.allocate("a", DType.F32, c.batch(), c.k(), c.m()).t() : arena.allocate("a", DType.F32, c.batch(), c.m(), c.k());
                Tensor b = c.transB() ? arena.allocate("b", DType.F32, c.batch(), c.n(), c.k()).t() : arena.allocate("b", DType.F32, c.batch(), c.k(), c.n());
                Tensor c0 = arena.allocate("c0", DType.F32, c.batch(), c.m(), c.n());
                Tensor one = arena.allocate("one", DType.F32, c.batch(), c.m(), c.n()), two = arena.allocate("two", DType.F32, c.batch(), c.m(), c.n());
                SplittableRandom r = new SplittableRandom(7);
                for (Tensor t : new Tensor[] {a, b, c0}) {
                    MemorySegment s = t.segment();
                    for (long i = 0; i < s.byteSize() / 4; i++) s.setAtIndex(Buf.F, i, (float) (r.nextDouble() - 0.5));
                }
                double beta = c.accumulate() ? 1 : 0;
                one.segment().copyFrom(c0.segment());
                two.segment().copyFrom(c0.segment());
                Matmul.matmul(a, b, one, 0.5, beta, 1);
                Matmul.matmul(a, b, two, 0.5, beta, 2);
                boolean same = one.segment().mismatch(two.segment()) < 0;
                double worst = 0;
                for (int s = 0; s < 64; s++) {
                    int bi = r.nextInt(c.batch()), i = r.nextInt(c.m()), j = r.nextInt(c.n());
                    double sum = 0, mag = 0;
                    for (int p = 0; p < c.k(); p++) {
                        double x = a.segment().getAtIndex(Buf.F, a.offset() + bi * a.stride(0) + i * a.stride(1) + p * a.stride(2));
                        double y = b.segment().getAtIndex(Buf.F, b.offset() + bi * b.stride(0) + p * b.stride(1) + j * b.stride(2));
                        sum += x * y;
                        mag += Math.abs(x * y);
                    }
                    long at = ((long) bi * c.m() + i) * c.n() + j;
                    double want = 0.5 * sum + beta * c0.segment().getAtIndex(Buf.F, at);
                    double got = one.segment().getAtIndex(Buf.F, at);
                    worst = Math.max(worst, Math.abs(got - want) / (0.5 * mag + Math.abs(want) + 1e-30));
                }
                System.out.println("RESULT " + c + " " + (same ? "same" : "differs") + " " + worst);
            }
        }
    }
}
