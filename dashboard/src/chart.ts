// Line charts over time, drawn by uPlot (a small, maintained canvas chart library).
import uPlot from "uplot";
import { h, table } from "./ui";

/** A series: its name and one value (or null for a gap) per time of the chart. */
export interface Series {
  label: string;
  values: (number | null)[];
}

const COLOURS = ["#1c64b4", "#e07b00", "#067647", "#b42318", "#6941c6", "#0e7090", "#a15c07", "#c11574"];

/** A chart of `series` over `times` (seconds since the epoch), y from 0 to `yMax`, sized
 * to its container (at most `height` px tall), with its figures as a table under it
 * (folded; for screen readers, copying and checking). */
export function lineChart(times: number[], series: Series[], yLabel: string, yMax = 5, height = 260): HTMLElement {
  const box = h("div", { class: "chart", role: "img", "aria-label": `${yLabel} over time: ${series.map((s) => s.label).join(", ")}` });
  const draw = () => {
    // The box's content width (it fills its container, less its padding).
    const inner = box.clientWidth - 2 * 6;
    const width = Math.max(240, Math.min(880, inner > 0 ? inner : 600));
    const plot = new uPlot(
      {
        width,
        height,
        scales: { x: { time: true }, y: { range: [0, yMax] } },
        axes: [{}, { label: yLabel }],
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true, points: { show: true, size: 5 } }))],
      },
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
    );
    box.replaceChildren(plot.root);
  };
  // Drawn once the box is in the page (its width known).
  requestAnimationFrame(draw);
  const figures = table(
    ["Date", ...series.map((s) => s.label)],
    times.map((t, i) => [new Date(t * 1000).toISOString().slice(0, 10), ...series.map((s) => s.values[i]?.toFixed(2) ?? "–")]),
    { class: "chart-data" },
  );
  return h("figure", { class: "chart-figure" }, box, h("details", {}, h("summary", {}, "Chart data"), h("div", { class: "scroll" }, figures)));
}
