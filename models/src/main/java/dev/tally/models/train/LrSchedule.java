package dev.tally.models.train;

/**
 * The papers' schedule (GaLore/APOLLO training_utils): linear warmup from 0 over {@code warmup} steps, then cosine decay
 * to {@code minRatio} of the peak at {@code total} steps. Returns the factor applied to each group's learning rate.
 */
public record LrSchedule(int warmup, int total, double minRatio) {
    public LrSchedule {
        if (warmup < 0 || total < 1 || warmup > total) throw new IllegalArgumentException("schedule: need 0 <= warmup <= total, total >= 1");
        if (minRatio < 0 || minRatio > 1) throw new IllegalArgumentException("schedule: min ratio must be in [0, 1], got " + minRatio);
    }

    /** The factor for 0-based optimizer step {@code step}. */
    public double factor(int step) {
        if (step < warmup) return (double) step / warmup;
        if (total == warmup) return 1.0;
        double progress = Math.min(1.0, (double) (step - warmup) / (total - warmup));
        return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }

    public static LrSchedule constant(int total) { return new LrSchedule(0, Math.max(1, total), 1.0); }
}
