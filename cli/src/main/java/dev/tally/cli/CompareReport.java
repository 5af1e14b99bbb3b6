package dev.tally.cli;

import dev.tally.engine.MemoryCategory;
import dev.tally.engine.MemoryLedger;
import dev.tally.engine.io.Json;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** What {@code tally compare} writes: compare.csv, compare.md, curves.png and memory-vs-perplexity.png. */
final class CompareReport {
    private CompareReport() {}

    static void write(Path out, List<CompareCommand.Result> results, String command, long seed, int steps) throws IOException {
        Files.writeString(out.resolve("compare.csv"), csv(results, command, seed));
        String md = "# tally compare\n\n`" + command + "` (seed " + seed + ", " + steps + " steps per method)\n\n" + markdownTable(results)
                + "\nPerplexity is exp of the mean held-out loss (the last 5% of the data's tokens, the same for every method). Planned"
                + " bytes are the run's memory plan by category (exact bookings, not estimates). Wall time and tokens/s depend on the"
                + " machine and its load; every other figure is reproduced exactly by rerunning with the same seed.\n\n"
                + "![held-out perplexity and training loss](curves.png)\n\n![memory vs perplexity](memory-vs-perplexity.png)\n";
        Files.writeString(out.resolve("compare.md"), md);
        curves(out.resolve("curves.png"), results);
        memoryVsPerplexity(out.resolve("memory-vs-perplexity.png"), results);
    }

    static String csv(List<CompareCommand.Result> results, String command, long seed) {
        StringBuilder b = new StringBuilder("method,final_eval_ppl,best_eval_ppl,final_train_loss");
        for (MemoryCategory c : MemoryCategory.values()) b.append(",planned_").append(c.label()).append("_bytes");
        b.append(",planned_total_bytes,tokens_per_s,wall_s,seed,finished,hyperparameters,command\n");
        for (CompareCommand.Result r : results) {
            b.append(r.method()).append(',').append(num(r.finalPpl())).append(',').append(num(r.bestPpl())).append(',').append(num(r.finalTrainLoss()));
            for (MemoryCategory c : MemoryCategory.values()) b.append(',').append(r.planned().getOrDefault(c, 0L));
            b.append(',').append(r.plannedTotal()).append(',').append(String.format(Locale.ROOT, "%.1f", r.tokensPerSecond()))
                    .append(',').append(String.format(Locale.ROOT, "%.1f", r.wallSeconds())).append(',').append(seed)
                    .append(',').append(r.finished()).append(',').append(quote(Json.write(r.hyper()))).append(',').append(quote(command)).append('\n');
        }
        return b.toString();
    }

    /** Full precision: two runs with one seed give the same text. */
    private static String num(double v) { return Double.toString(v); }

    private static String quote(String s) { return '"' + s.replace("\"", "\"\"") + '"'; }

    static String markdownTable(List<CompareCommand.Result> results) {
        StringBuilder b = new StringBuilder("| method | final ppl | best ppl | final train loss | optimizer state | planned total | tokens/s | wall |\n"
                + "|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (CompareCommand.Result r : results) {
            b.append(String.format(Locale.ROOT, "| %s%s | %.2f | %.2f | %.4f | %s | %s | %.0f | %.0f s |%n", r.method(), r.finished() ? "" : " (unfinished)",
                    r.finalPpl(), r.bestPpl(), r.finalTrainLoss(), MemoryLedger.human(r.planned().getOrDefault(MemoryCategory.OPTIMIZER_STATE, 0L)),
                    MemoryLedger.human(r.plannedTotal()), r.tokensPerSecond(), r.wallSeconds()));
        }
        return b.toString();
    }

    /** Two panels side by side: training loss and held-out perplexity against step, one line per method. */
    static void curves(Path file, List<CompareCommand.Result> results) throws IOException {
        XYChart loss = new XYChartBuilder().width(640).height(460).title("training loss").xAxisTitle("step").yAxisTitle("loss (nats/token)").build();
        XYChart ppl = new XYChartBuilder().width(640).height(460).title("held-out perplexity").xAxisTitle("step").yAxisTitle("perplexity").build();
        for (XYChart c : List.of(loss, ppl)) c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        for (CompareCommand.Result r : results) {
            loss.addSeries(r.method(), xs(r.trainCurve()), ys(r.trainCurve())).setMarker(SeriesMarkers.NONE);
            ppl.addSeries(r.method(), xs(r.evalCurve()), ys(r.evalCurve())).setMarker(SeriesMarkers.CIRCLE);
        }
        BitmapEncoder.saveBitmap(List.of(loss, ppl), 1, 2, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    /** The papers' figure: x planned memory (MiB), y final held-out perplexity, one point per method. */
    static void memoryVsPerplexity(Path file, List<CompareCommand.Result> results) throws IOException {
        XYChart c = new XYChartBuilder().width(760).height(500).title("planned memory vs held-out perplexity")
                .xAxisTitle("planned total memory (MiB)").yAxisTitle("final held-out perplexity").build();
        c.getStyler().setDefaultSeriesRenderStyle(org.knowm.xchart.XYSeries.XYSeriesRenderStyle.Scatter);
        c.getStyler().setMarkerSize(12);
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        for (CompareCommand.Result r : results) {
            c.addSeries(r.method() + " (state " + MemoryLedger.human(r.planned().getOrDefault(MemoryCategory.OPTIMIZER_STATE, 0L)) + ")",
                    new double[] {r.plannedTotal() / 1048576.0}, new double[] {r.finalPpl()});
        }
        BitmapEncoder.saveBitmap(c, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static double[] xs(List<double[]> pts) { return pts.stream().mapToDouble(p -> p[0]).toArray(); }

    private static double[] ys(List<double[]> pts) { return pts.stream().mapToDouble(p -> p[1]).toArray(); }
}
