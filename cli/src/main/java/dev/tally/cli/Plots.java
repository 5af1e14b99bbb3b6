package dev.tally.cli;

import dev.tally.engine.MemoryCategory;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** PNG charts: the loss curve, and memory by category (one bar or stacked bars per configuration). */
final class Plots {
    private Plots() {}

    static void lossCurve(Path file, List<Integer> steps, List<Double> loss, List<Integer> evalSteps, List<Double> evalLoss,
                          String title) throws IOException {
        XYChart chart = new XYChartBuilder().width(900).height(540).title(title).xAxisTitle("step").yAxisTitle("loss (nats/token)").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setMarkerSize(7);
        chart.addSeries("train", steps, loss).setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
        if (!evalSteps.isEmpty()) chart.addSeries("held-out", evalSteps, evalLoss).setMarker(org.knowm.xchart.style.markers.SeriesMarkers.CIRCLE);
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    /** Stacked bars: one bar per label, one series per memory category, in MiB. */
    static void memoryBars(Path file, String title, List<String> labels, Map<String, Map<MemoryCategory, Long>> bytes) throws IOException {
        CategoryChart chart = new CategoryChartBuilder().width(Math.max(700, 120 * labels.size())).height(560).title(title)
                .xAxisTitle("").yAxisTitle("MiB").build();
        chart.getStyler().setStacked(true);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setXAxisLabelRotation(labels.size() > 4 ? 30 : 0);
        for (MemoryCategory c : MemoryCategory.values()) {
            List<Double> v = new ArrayList<>();
            boolean any = false;
            for (String l : labels) {
                long b = bytes.get(l).getOrDefault(c, 0L);
                any |= b > 0;
                v.add(b / 1048576.0);
            }
            if (any) chart.addSeries(c.label(), labels, v);
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
