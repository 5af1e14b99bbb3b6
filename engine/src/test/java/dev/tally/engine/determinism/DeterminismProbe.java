package dev.tally.engine.determinism;

import dev.tally.engine.MemoryArena;
import dev.tally.engine.Backends;
import dev.tally.engine.AdamStep;
import dev.tally.engine.BinaryOp;
import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Ops;
import dev.tally.engine.ReduceOp;
import dev.tally.engine.Shape;
import dev.tally.engine.Tensor;
import dev.tally.engine.UnaryOp;
import dev.tally.engine.testing.SeededRandom;
import dev.tally.engine.testing.TestArenas;
import dev.tally.engine.testing.Views;

import java.lang.foreign.MemorySegment;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Child-process side of {@link DeterminismTest}: in a fresh JVM, runs every CPU fast-path op once (its first call, cold),
 * then {@code warmUp} more times on small inputs of the same kind (so the JIT compiles its kernels, C2 under the default
 * flags), in {@code rounds} rounds each followed by a call on the original inputs, and prints one line per op:
 * {@code DIGEST name cold warm1 … warmN} with the SHA-256 of the output bytes. Arguments: warmUp rounds. The parent compares these lines across JIT modes and thread counts.
 */
public final class DeterminismProbe {
    /** One op on fixed inputs; {@link #run} overwrites {@link #outputs} from {@link #inputs} only. */
    private record Case(String name, Runnable run, List<Tensor> outputs) {}

    private DeterminismProbe() {}

    public static void main(String[] args) throws Exception {
        int warmUp = Integer.parseInt(args[0]), rounds = Integer.parseInt(args[1]);
        Ops ops = Backends.of(Device.CPU).ops();
        try (MemoryArena big = TestArenas.open(Device.CPU, 64L << 20); MemoryArena small = TestArenas.open(Device.CPU, 16L << 20)) {
            // 130 × 1037: vector bodies and scalar tails for any lane count, and ≥ 2 row chunks on the pool
            List<Case> cases = cases(ops, big, 1, 130, 1037);
            List<Case> warm = cases(ops, small, 2, 3, 53);
            StringBuilder[] lines = new StringBuilder[cases.size()];
            for (int i = 0; i < cases.size(); i++) lines[i] = new StringBuilder("DIGEST " + cases.get(i).name + " " + digest(cases.get(i), ops));
            // warm-up in rounds, each followed by the real inputs again: later rounds run code the JIT compiled (in the
            // background) for what earlier rounds saw, including recompilations after the large inputs
            for (int round = 0; round < rounds; round++) {
                for (int k = 0; k < warmUp / rounds; k++) for (Case c : warm) c.run.run();
                for (int i = 0; i < cases.size(); i++) lines[i].append(' ').append(digest(cases.get(i), ops));
            }
            for (StringBuilder line : lines) System.out.println(line);
        }
    }

    private static String digest(Case c, Ops ops) throws Exception {
        c.run.run();
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (Tensor t : c.outputs) {
            MemorySegment host = MemorySegment.ofArray(new byte[(int) t.byteSize()]);
            ops.copyToHost(t, host);
            md.update(host.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
        return HexFormat.of().formatHex(md.digest(), 0, 12);
    }

    private static List<Case> cases(Ops ops, MemoryArena arena, long seed, int rows, int cols) {
        SeededRandom r = new SeededRandom(seed);
        // row ops (softmax family, RMSNorm, reductions) split rows over the pool, so they get all the rows; elementwise
        // ops get a few (the C1 child runs the Vector API's slow Java fallback), and one large case below
        Shape rc = Shape.of(rows, cols), ec = Shape.of(Math.min(rows, 3), cols), row = Shape.of(cols), col = Shape.of(ec.dim(0), 1);
        Tensor x = input(arena, r, rc, 3), y = input(arena, r, rc, 1);
        Tensor ex = input(arena, r, ec, 3), ey = input(arena, r, ec, 1), pos = positive(arena, r, ec);
        Tensor w = input(arena, r, row, 1), perRow = input(arena, r, col, 1);
        List<Case> cs = new ArrayList<>();
        for (UnaryOp op : new UnaryOp[] {UnaryOp.EXP, UnaryOp.SIGMOID, UnaryOp.SILU, UnaryOp.TANH, UnaryOp.LOG, UnaryOp.SQRT,
                UnaryOp.RSQRT, UnaryOp.RECIPROCAL}) {
            Tensor in = op == UnaryOp.LOG || op == UnaryOp.SQRT || op == UnaryOp.RSQRT ? pos : ex;
            Tensor out = arena.allocate("out", DType.F32, ec);
            cs.add(new Case("unary." + op, () -> ops.unary(op, in, out), List.of(out)));
        }
        for (UnaryOp op : new UnaryOp[] {UnaryOp.EXP, UnaryOp.SIGMOID, UnaryOp.SILU}) {
            Tensor out = arena.allocate("out", DType.F32, ec);
            cs.add(new Case("unaryBackward." + op, () -> ops.unaryBackward(op, ex, ey, out), List.of(out)));
        }
        for (BinaryOp op : new BinaryOp[] {BinaryOp.ADD, BinaryOp.MUL, BinaryOp.DIV, BinaryOp.MAX}) {
            Tensor same = arena.allocate("out", DType.F32, ec), bRow = arena.allocate("out", DType.F32, ec);
            Tensor bCol = arena.allocate("out", DType.F32, ec), scalar = arena.allocate("out", DType.F32, ec);
            cs.add(new Case("binary." + op, () -> {
                ops.binary(op, ex, ey, same);
                ops.binary(op, ex, w, bRow);
                ops.binary(op, ex, perRow, bCol);
                ops.binaryScalar(op, ex, 0.375, scalar);
            }, List.of(same, bRow, bCol, scalar)));
        }
        Tensor axpby = arena.allocate("out", DType.F32, ec);
        cs.add(new Case("axpby", () -> ops.axpby(0.9, ex, -0.1, ey, axpby), List.of(axpby)));

        // elementwise ops split flattened elements over the pool past 2^16 elements: a length with a scalar tail, so the
        // last task's tail and the other tasks' vector loops are both exercised; and the fused AdamW step over it
        Shape big = Shape.of(rows >= 100 ? 2 * 65536 + 37 : 1037); // the warm-up's small inputs run the same loops
        Tensor bx = input(arena, r, big, 3), by = input(arena, r, big, 1), bpos = positive(arena, r, big);
        Tensor bExp = arena.allocate("out", DType.F32, big), bMul = arena.allocate("out", DType.F32, big);
        Tensor bAxpby = arena.allocate("out", DType.F32, big), bScalar = arena.allocate("out", DType.F32, big);
        cs.add(new Case("elementwise.parallel", () -> {
            ops.unary(UnaryOp.EXP, bx, bExp);
            ops.binary(BinaryOp.MUL, bx, by, bMul);
            ops.axpby(0.9, bx, 0.1, by, bAxpby);
            ops.binaryScalar(BinaryOp.MUL, bx, 1e-3, bScalar);
        }, List.of(bExp, bMul, bAxpby, bScalar)));
        Tensor m0 = input(arena, r, big, 0.1), scratch = arena.allocate("scratch", DType.F32, big);
        cs.add(adamCase(ops, arena, "adamStep", input(arena, r, big, 1), by, bx, m0, bpos, scratch));
        // bf16 weight and gradient with fp32 moments: the bf16 one-pass kernel's vector lanes and scalar tail
        Tensor hg = bf16(arena, r, big, 1);
        cs.add(adamCase(ops, arena, "adamStep.bf16", bf16(arena, r, big, 1), hg, hg, m0, bpos, scratch));

        // bf16 operands take the generic kernels (math in double) with their rows split over the pool on all the rows,
        // and the GEMM widens them into its panels and rounds its rows back a vector at a time
        Tensor hx = bf16(arena, r, rc, 3), hy = bf16(arena, r, rc, 1), hw = bf16(arena, r, row, 1);
        Tensor hSilu = arena.allocate("out", DType.BF16, rc), hSiluGrad = arena.allocate("out", DType.BF16, rc);
        Tensor hMul = arena.allocate("out", DType.BF16, rc), hAddRow = arena.allocate("out", DType.BF16, rc);
        Tensor hSoftmax = arena.allocate("out", DType.BF16, rc), hNorm = arena.allocate("out", DType.BF16, rc);
        Tensor hRstd = arena.allocate("rstd", DType.F32, rows), hdx = arena.allocate("out", DType.BF16, rc);
        Tensor hdw = arena.allocate("dw", DType.BF16, cols), hWide = arena.allocate("out", DType.F32, rc);
        Tensor hNorms = arena.allocate("out", DType.F32, rows, 1);
        cs.add(new Case("bf16.rows", () -> {
            ops.unary(UnaryOp.SILU, hx, hSilu);
            ops.unaryBackward(UnaryOp.SILU, hx, hy, hSiluGrad);
            ops.binary(BinaryOp.MUL, hx, hy, hMul);
            ops.binary(BinaryOp.ADD, hx, hw, hAddRow);
            ops.softmax(hx, hSoftmax, true);
            ops.rmsNorm(hx, hw, 1e-6, hNorm, hRstd);
            ops.rmsNormBackward(hx, hw, hRstd, hy, hdx, hdw);
            ops.copy(hx, hWide);
            ops.reduce(ReduceOp.NORM2, hx, -1, hNorms);
        }, List.of(hSilu, hSiluGrad, hMul, hAddRow, hSoftmax, hNorm, hRstd, hdx, hdw, hWide, hNorms)));
        int hk = 96, hn = Math.max(40, cols / 16);
        Tensor ha = bf16(arena, r, Shape.of(rows, hk), 1), hbStored = bf16(arena, r, Shape.of(hn, hk), 1);
        Tensor hc = arena.allocate("out", DType.BF16, rows, hn);
        cs.add(new Case("bf16.matmul", () -> ops.matmul(ha, hbStored.transpose(0, 1), hc, 1.0, 0.0), List.of(hc)));

        Tensor sm = arena.allocate("out", DType.F32, rc), causal = arena.allocate("out", DType.F32, rc);
        cs.add(new Case("softmax", () -> ops.softmax(x, sm, false), List.of(sm)));
        cs.add(new Case("softmax.causal", () -> ops.softmax(x, causal, true), List.of(causal)));
        Tensor lsm = arena.allocate("out", DType.F32, rc);
        cs.add(new Case("logSoftmax", () -> ops.logSoftmax(x, lsm), List.of(lsm)));
        Tensor dsm = arena.allocate("out", DType.F32, rc);
        cs.add(new Case("softmaxBackward", () -> ops.softmaxBackward(sm, y, dsm), List.of(dsm)));

        Tensor norm = arena.allocate("out", DType.F32, rc), rstd = arena.allocate("rstd", DType.F32, rows);
        cs.add(new Case("rmsNorm", () -> ops.rmsNorm(x, w, 1e-6, norm, rstd), List.of(norm, rstd)));
        Tensor dx = arena.allocate("out", DType.F32, rc), dw = arena.allocate("dw", DType.F32, cols);
        cs.add(new Case("rmsNormBackward", () -> ops.rmsNormBackward(x, w, rstd, y, dx, dw), List.of(dx, dw)));

        for (ReduceOp op : ReduceOp.values()) {
            Tensor lastDim = arena.allocate("out", DType.F32, rows, 1), firstDim = arena.allocate("out", DType.F32, 1, cols);
            Tensor all = arena.allocate("out", DType.F32, 1);
            cs.add(new Case("reduce." + op, () -> {
                ops.reduce(op, x, -1, lastDim);
                ops.reduce(op, x, 0, firstDim);
                ops.reduceAll(op, x, all);
            }, List.of(lastDim, firstDim, all)));
        }

        // GEMM: one product over several K blocks and the thread split, a batch of small (attention-sized) ones,
        // a transposed operand, and one below the small-product cut-off
        int m = rows, k = 300, n = Math.max(8, cols / 8);
        Tensor a = input(arena, r, Shape.of(m, k), 1), b = input(arena, r, Shape.of(k, n), 1);
        Tensor c0 = input(arena, r, Shape.of(m, n), 1), c = arena.allocate("out", DType.F32, m, n);
        Tensor qa = input(arena, r, Shape.of(4, 8, 64, 16), 1), kb = input(arena, r, Shape.of(4, 8, 64, 16), 1);
        Tensor att = arena.allocate("out", DType.F32, 4, 8, 64, 64);
        Tensor tiny = arena.allocate("out", DType.F32, 5, 7);
        Tensor ta = input(arena, r, Shape.of(5, 9), 1), tb = input(arena, r, Shape.of(9, 7), 1);
        cs.add(new Case("matmul", () -> {
            ops.copy(c0, c);
            ops.matmul(a, b, c, 1.0, 0.5);
            ops.matmul(qa, kb.transpose(-1, -2), att, 0.25, 0.0);
            ops.matmul(ta, tb, tiny, 1.0, 0.0);
        }, List.of(c, att, tiny)));
        Tensor cFresh = arena.allocate("out", DType.F32, m, n);
        cs.add(new Case("matmul.beta0", () -> ops.matmul(a, b, cFresh, 1.0, 0.0), List.of(cFresh)));

        // fused causal attention: T = rows crosses the 64-row query and key blocks on the large inputs, Dh ragged
        // against the tile width; backward accumulates, so its gradients start from zero on every call
        Shape heads = Shape.of(2, 2, rows, 40);
        Tensor aq = input(arena, r, heads, 1), ak = input(arena, r, heads, 1), av = input(arena, r, heads, 1), ado = input(arena, r, heads, 1);
        Tensor ao = arena.allocate("out", DType.F32, heads), alse = arena.allocate("lse", DType.F32, 2, 2, rows);
        Tensor gq = arena.allocate("out", DType.F32, heads), gk = arena.allocate("out", DType.F32, heads), gv = arena.allocate("out", DType.F32, heads);
        cs.add(new Case("causalAttention.fused", () -> {
            ops.causalAttention(aq, ak, av, 0.125, ao, alse);
            ops.fill(gq, 0);
            ops.fill(gk, 0);
            ops.fill(gv, 0);
            ops.causalAttentionBackward(aq, ak, av, ao, alse, ado, 0.125, gq, gk, gv);
        }, List.of(ao, alse, gq, gk, gv)));
        return cs;
    }

    private static Tensor input(MemoryArena arena, SeededRandom r, Shape s, double scale) {
        return Views.of(arena, "in", DType.F32, s, r.normal((int) s.numel(), scale));
    }

    /**
     * Two AdamW steps (bias-corrected with decoupled decay, then uncorrected with decay after) on a copy of w0 in w0's
     * dtype with fp32 moments, from the same state every call (the step updates its operands in place).
     */
    private static Case adamCase(Ops ops, MemoryArena arena, String name, Tensor w0, Tensor g1, Tensor g2, Tensor m0, Tensor pos, Tensor scratch) {
        Shape s = w0.shape();
        Tensor w = arena.allocate("w", w0.dtype(), s), m = arena.allocate("m", DType.F32, s), v = arena.allocate("v", DType.F32, s);
        return new Case(name, () -> {
            ops.copy(w0, w);
            ops.copy(m0, m);
            ops.binary(BinaryOp.MUL, pos, pos, v);
            ops.adamStep(new AdamStep(0.9, 0.999, 1e-8, Math.sqrt(1 - 0.999 * 0.999), 1e-3 / (1 - 0.81), 1 - 1e-5, 0), w, g1, m, v, scratch);
            ops.adamStep(new AdamStep(0.9, 0.999, 1e-6, 1, 1e-3, 1, -1e-5), w, g2, m, v, scratch);
        }, List.of(w, m, v));
    }

    private static Tensor bf16(MemoryArena arena, SeededRandom r, Shape s, double scale) {
        return Views.of(arena, "in", DType.BF16, s, r.normal((int) s.numel(), scale));
    }

    private static Tensor positive(MemoryArena arena, SeededRandom r, Shape s) {
        return Views.of(arena, "in", DType.F32, s, r.uniform((int) s.numel(), 0.01, 20));
    }
}
