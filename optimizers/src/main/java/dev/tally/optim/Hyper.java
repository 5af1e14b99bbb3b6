package dev.tally.optim;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * An optimizer's hyperparameters: the user's values over the method's defaults, validated against the keys the method
 * knows, so a typo ("weight_decy") fails before any memory is booked. Values are JSON-like: Double/Long/Boolean/String,
 * List for tuples (betas, eps pairs), null for Python's None.
 */
public final class Hyper {
    private final String optimizer;
    private final Map<String, Object> values;

    public Hyper(String optimizer, Map<String, Object> defaults, Map<String, ?> given) {
        this.optimizer = optimizer;
        Map<String, Object> v = new LinkedHashMap<>(defaults);
        for (Map.Entry<String, ?> e : given.entrySet()) {
            if (!defaults.containsKey(e.getKey())) {
                throw new IllegalArgumentException("unknown hyperparameter '" + e.getKey() + "' for optimizer " + optimizer
                        + " (known: " + new TreeSet<>(defaults.keySet()) + ")");
            }
            v.put(e.getKey(), e.getValue());
        }
        this.values = v;
    }

    public String optimizer() { return optimizer; }
    /** Effective values (defaults overlaid with the user's), in declaration order. */
    public Map<String, Object> asMap() { return java.util.Collections.unmodifiableMap(values); }
    public Set<String> keys() { return values.keySet(); }
    public boolean isNull(String key) { return values.get(key) == null; }

    private Object raw(String key) {
        if (!values.containsKey(key)) throw new IllegalStateException(optimizer + ": no hyperparameter '" + key + "'");
        return values.get(key);
    }

    public double d(String key) {
        Object o = raw(key);
        if (o instanceof Number n) return n.doubleValue();
        if (o instanceof String s) {
            try {
                return Double.parseDouble(s);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(optimizer + ": hyperparameter '" + key + "' = '" + s + "' is not a number");
            }
        }
        throw new IllegalArgumentException(optimizer + ": hyperparameter '" + key + "' = " + o + " is not a number");
    }

    public int i(String key) {
        double v = d(key);
        if (v != Math.rint(v) || Math.abs(v) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(optimizer + ": hyperparameter '" + key + "' = " + v + " is not an integer");
        }
        return (int) v;
    }

    public boolean b(String key) {
        Object o = raw(key);
        if (o instanceof Boolean b) return b;
        if (o instanceof String s && (s.equalsIgnoreCase("true") || s.equalsIgnoreCase("false"))) return Boolean.parseBoolean(s);
        throw new IllegalArgumentException(optimizer + ": hyperparameter '" + key + "' = " + o + " is not true/false");
    }

    public String s(String key) { return String.valueOf(raw(key)); }

    /** Element {@code index} of a tuple hyperparameter (betas, eps). */
    public double tuple(String key, int index) {
        Object o = raw(key);
        List<?> l = o instanceof List<?> list ? list : o instanceof String str ? parseList(str) : null;
        if (l == null || index >= l.size() || !(l.get(index) instanceof Number n)) {
            throw new IllegalArgumentException(optimizer + ": hyperparameter '" + key + "' = " + o + " needs at least "
                    + (index + 1) + " numbers");
        }
        return n.doubleValue();
    }

    public int tupleSize(String key) {
        Object o = raw(key);
        List<?> l = o instanceof List<?> list ? list : o instanceof String str ? parseList(str) : List.of();
        return l.size();
    }

    private static List<?> parseList(String s) {
        String t = s.trim();
        if (!t.startsWith("[")) t = "[" + t + "]";
        Object v = dev.tally.engine.io.Json.parse(t);
        return v instanceof List<?> l ? l : null;
    }

    // ---- validation helpers ----

    public void requireNonNegative(String key) {
        if (d(key) < 0) throw new IllegalArgumentException(optimizer + ": " + key + " must be >= 0, got " + d(key));
    }

    public void requirePositive(String key) {
        if (!(d(key) > 0)) throw new IllegalArgumentException(optimizer + ": " + key + " must be > 0, got " + values.get(key));
    }

    public void requireBeta(String key, int index) {
        double b = tuple(key, index);
        if (!(b >= 0 && b < 1)) throw new IllegalArgumentException(optimizer + ": " + key + "[" + index + "] must be in [0, 1), got " + b);
    }

    @Override public String toString() { return optimizer + values; }
}
