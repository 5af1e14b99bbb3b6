package dev.tally.models.train;

import dev.tally.engine.Backends;
import dev.tally.engine.Device;
import dev.tally.engine.MemoryLedger;

import java.util.Locale;

/**
 * Which decoder layers keep only their input in the forward pass and are recomputed during backward (activation
 * recompute, "gradient checkpointing"). Recomputed layers are always the first ones: layer 0 is back-propagated last,
 * when every later layer's activations are already freed, so its recompute adds the least to the peak.
 *
 * <p>Cost: each recomputed layer runs its forward twice, about one extra forward pass when every layer is recomputed
 * (≈ +33% step time for a step of forward + 2× backward).
 */
public sealed interface Recompute {
    /** Every activation kept for backward (the default). */
    Recompute NONE = new First(0);
    /** Every decoder layer recomputed. */
    Recompute LAYERS = new All();

    /** Recompute every decoder layer. */
    record All() implements Recompute {}

    /** Recompute layers 0 … count−1. */
    record First(int count) implements Recompute {
        public First {
            if (count < 0) throw new IllegalArgumentException("recompute: layer count must be >= 0, got " + count);
        }
    }

    /** The fewest layers whose recompute makes the whole plan (every category) fit {@code budgetBytes}. */
    record Auto(long budgetBytes) implements Recompute {
        public Auto {
            if (budgetBytes <= 0) throw new IllegalArgumentException("recompute auto: the memory budget must be > 0 B, got " + budgetBytes);
        }
    }

    /** The number of recomputed layers for a model of {@code layers} layers; {@link Auto} is resolved by the Trainer. */
    default int layersOf(int layers) {
        return switch (this) {
            case All a -> layers;
            case First f -> {
                if (f.count() > layers) {
                    throw new IllegalArgumentException("recompute: " + f.count() + " layers requested but the model has " + layers);
                }
                yield f.count();
            }
            case Auto a -> throw new IllegalStateException("recompute auto is resolved against a plan, not a layer count");
        };
    }

    /** How users write it: none, layers, auto, or a layer count. */
    default String userName() {
        return switch (this) {
            case All a -> "layers";
            case First f -> f.count() == 0 ? "none" : Integer.toString(f.count());
            case Auto a -> "auto";
        };
    }

    /**
     * Parses {@code --recompute}: {@code none}, {@code layers} (all), {@code auto} (fit {@code budgetBytes}), or a count
     * N (the first N layers).
     */
    static Recompute parse(String value, long budgetBytes) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "none", "off", "0" -> NONE;
            case "layers", "all", "on" -> LAYERS;
            case "auto" -> new Auto(budgetBytes);
            default -> {
                try {
                    yield new First(Integer.parseInt(v));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--recompute: expected none, layers, auto or a layer count, got '" + value + "'");
                }
            }
        };
    }

    /**
     * The memory a plan for {@code device} may use: free device memory on CUDA, free physical memory on the CPU (arenas
     * are off-heap), unlimited on META.
     */
    static long deviceBudget(Device device) {
        try {
            return Backends.of(device).availableBytes();
        } catch (RuntimeException e) { // planning for a device that is not here (a GPU, from a laptop): say what to do
            throw new IllegalArgumentException("the default budget is the free memory of " + device + ", which cannot be read here ("
                    + e.getMessage() + "); give --budget", e);
        }
    }

    /** Parses a byte size: "12GiB", "24 GB" (GB = 10⁹), "512MiB", "1.5TiB", or plain bytes. */
    static long parseBytes(String text) {
        String t = text.trim().replace("_", "").replace(",", "");
        String[][] units = {{"tib", "1099511627776"}, {"gib", "1073741824"}, {"mib", "1048576"}, {"kib", "1024"},
                {"tb", "1000000000000"}, {"gb", "1000000000"}, {"mb", "1000000"}, {"kb", "1000"}, {"b", "1"}};
        String lower = t.toLowerCase(Locale.ROOT);
        for (String[] u : units) {
            if (lower.endsWith(u[0])) {
                String num = t.substring(0, t.length() - u[0].length()).trim();
                try {
                    double x = Double.parseDouble(num);
                    if (!(x > 0)) throw new NumberFormatException();
                    return (long) Math.floor(x * Long.parseLong(u[1]));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("memory size '" + text + "': expected a positive number before " + u[0]);
                }
            }
        }
        try {
            long b = Long.parseLong(t);
            if (b <= 0) throw new NumberFormatException();
            return b;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("memory size '" + text + "': expected e.g. 12GiB, 24GB, 512MiB or a byte count");
        }
    }

    /** "12.00 GiB (12,884,901,888 B)". */
    static String describeBytes(long bytes) {
        return String.format("%s (%,d B)", MemoryLedger.human(bytes), bytes);
    }
}
