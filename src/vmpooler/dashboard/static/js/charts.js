// The history charts (uPlot, vendored, a global from its IIFE build): levels, checkouts, refusals,
// failures, clone and boot times of one pool or of all pools.

import { fmt } from "./format.js";
import { RANGES } from "./view.js";

const charts = new Map(); // kind -> uPlot
let lastHistory = null;
/** The time window every chart shows, [from, to] in epoch seconds: the whole range, however sparse the data. */
let chartWindow = [Date.now() / 1000 - 3600, Date.now() / 1000];

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function withAlpha(color, alpha) {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (!hex) return color;
  const n = Number.parseInt(hex[1], 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function chartSpecs() {
  const bars = uPlot.paths.bars({ size: [0.7, 24], gap: 1 });
  return {
    levels: {
      height: 190,
      series: [
        { label: "Size", stroke: css("--muted"), dash: [4, 4], width: 1.25 },
        { label: "Ready", stroke: css("--ready"), fill: withAlpha(css("--ready"), 0.14), width: 2 },
        { label: "Pending", stroke: css("--pending"), width: 1.5 },
        { label: "Running", stroke: css("--running"), width: 2 },
      ],
      values: (p) => [p.size, p.ready, p.pending, p.running],
    },
    checkouts: {
      height: 130,
      total: "checkouts",
      series: [{ label: "Checkouts", stroke: css("--running"), fill: withAlpha(css("--running"), 0.7), paths: bars }],
      values: (p) => [p.checkouts],
    },
    refused: {
      height: 130,
      total: "refused",
      series: [{ label: "Refused", stroke: css("--bad"), fill: withAlpha(css("--bad"), 0.6), paths: bars }],
      values: (p) => [p.refused ?? 0],
    },
    clone: {
      height: 130,
      seconds: true,
      series: [{ label: "Mean", stroke: css("--accent"), width: 2, spanGaps: true }],
      values: (p) => [p.clones ? p.clone_avg : null],
    },
    boot: {
      height: 130,
      seconds: true,
      series: [
        // a minute with no boot has no percentile: the line goes on to the next one
        { label: "p50", stroke: css("--ready"), width: 2, spanGaps: true },
        { label: "p90", stroke: css("--pending"), width: 2, spanGaps: true },
      ],
      values: (p) => [p.boots ? p.boot_p50 : null, p.boots ? p.boot_p90 : null],
    },
    failures: {
      height: 130,
      total: "failures",
      series: [{ label: "Failures", stroke: css("--bad"), fill: withAlpha(css("--bad"), 0.75), paths: bars }],
      values: (p) => [p.failures],
    },
  };
}

/** Columns for uPlot; a gap of more than one step (no manager running) breaks the lines. */
function columns(points, step, values, width) {
  const cols = Array.from({ length: width + 1 }, () => []);
  let previous = null;
  for (const p of points) {
    if (previous !== null && p.t - previous > step * 1.5) {
      cols[0].push(previous + step);
      for (let i = 1; i <= width; i += 1) cols[i].push(null);
    }
    cols[0].push(p.t);
    values(p).forEach((v, i) => cols[i + 1].push(v ?? null));
    previous = p.t;
  }
  return cols;
}

/** Draws ``history`` ({range, resolution, points}), or the last one again when not given. */
export function drawCharts(history) {
  if (history) lastHistory = history;
  if (!lastHistory || typeof uPlot === "undefined") return;
  const { points, resolution, range } = lastHistory;
  const step = resolution === "1h" ? 3600 : 60;
  const specs = chartSpecs();
  const to = Date.now() / 1000;
  chartWindow = [to - RANGES[range], to];
  const per = resolution === "1h" ? "per hour" : "per minute";
  for (const [kind, spec] of Object.entries(specs)) {
    const figure = document.querySelector(`figure[data-chart="${kind}"]`);
    const data = columns(points, step, spec.values, spec.series.length);
    figure.dataset.points = String(points.length);
    figure.querySelector(".no-data").hidden = points.length > 0;
    figure.querySelector(".per")?.replaceChildren(per);
    if (spec.total) {
      const sum = points.reduce((a, p) => a + (p[spec.total] || 0), 0);
      figure.querySelector(".total").textContent = `· ${fmt(Math.round(sum))} in ${range}`;
    }
    let chart = charts.get(kind);
    if (chart) {
      chart.setData(data);
      chart.setLegend({ idx: null }); // the latest values again
    } else {
      charts.set(kind, makeChart(figure.querySelector(".plot"), spec, data));
    }
  }
}

function lastValue(u, sidx) {
  const values = u.data[sidx];
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] != null) return values[i];
  return null;
}

/** Dots on a line only when there are few points (a new site, a week of hours): a lone point shows. */
function sparse(u, sidx) {
  let n = 0;
  for (const v of u.data[sidx]) if (v != null && ++n >= 30) return false;
  return true;
}

function tickLabel(t, range) {
  const date = new Date(t * 1000);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  if (range !== "7d") return time;
  if (date.getHours() === 0 && date.getMinutes() === 0) {
    return date.toLocaleDateString([], { weekday: "short", day: "numeric" });
  }
  return time;
}

const TIME_OF_POINT = { weekday: "short", hour: "2-digit", minute: "2-digit", hour12: false };

function makeChart(target, spec, data) {
  const axis = {
    stroke: css("--muted"),
    grid: { stroke: css("--grid"), width: 1 },
    ticks: { stroke: css("--grid"), width: 1, size: 4 },
    font: `11px ${css("--font")}`,
  };
  const countIncrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
  const show = (v) => (v == null ? "–" : spec.seconds ? `${v.toFixed(1)} s` : fmt(Math.round(v * 10) / 10));
  const opts = {
    width: Math.max(200, target.clientWidth),
    height: spec.height,
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    // without the cursor on the chart, the legend shows each series' latest value
    legend: { live: true },
    scales: {
      x: { time: true, range: () => chartWindow },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] },
    },
    axes: [
      { ...axis, size: 26, space: 64, values: (u, ticks) => ticks.map((t) => tickLabel(t, lastHistory.range)) },
      {
        ...axis,
        size: 46,
        incrs: spec.seconds ? undefined : countIncrs,
        values: (u, ticks) => ticks.map((v) => (spec.seconds ? `${v} s` : fmt(v))),
      },
    ],
    series: [
      {
        label: "Time",
        value: (u, v) => (v == null ? "latest" : new Date(v * 1000).toLocaleString([], TIME_OF_POINT)),
      },
      ...spec.series.map((s) => ({
        points: { show: s.paths || s.dash ? false : sparse, size: 5, fill: s.stroke },
        value: (u, v, sidx, idx) => show(idx == null ? lastValue(u, sidx) : v),
        ...s,
      })),
    ],
  };
  return new uPlot(opts, data, target);
}

export function resizeCharts() {
  for (const [kind, chart] of charts) {
    const target = document.querySelector(`figure[data-chart="${kind}"] .plot`);
    const width = Math.max(200, target.clientWidth);
    if (width !== chart.width) chart.setSize({ width, height: chart.height });
  }
}

export function rebuildCharts() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
  drawCharts();
}
