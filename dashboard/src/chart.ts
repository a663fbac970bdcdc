// Line charts over time, drawn by uPlot (a small, maintained canvas chart library).
import uPlot from "uplot";
import { h } from "./ui";

/** A series: its name and one value (or null for a gap) per time of the chart. */
export interface Series {
  label: string;
  values: (number | null)[];
}

const COLOURS = ["#1c64b4", "#e07b00", "#067647", "#b42318", "#6941c6", "#0e7090", "#a15c07", "#c11574"];

/** A chart of `series` over `times` (seconds since the epoch), y from 0 to `yMax`, sized
 * to its container (at most `height` px tall). */
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
  return box;
}
