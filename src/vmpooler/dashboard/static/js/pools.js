// The list of every pool, a page at a time: a 1,000-pool site draws 50 rows (20 on a phone), not
// 1,000. Rows are built when first shown and then only their changed figures are written.

import { problemKinds } from "./problems.js";
import { $, ago, fmt, setText } from "./format.js";
import { view } from "./view.js";

/** rows a page: a phone shows each pool as a small card, three times as tall as a row */
export const PAGE_SIZE = matchMedia("(max-width: 720px)").matches ? 20 : 50;
const RANK = { degraded: 0, empty: 1, failing: 2, filling: 3 };

/** name -> {name, aliases, haystack, levels, kind, health, row?, cells?, shown} */
const pools = new Map();
let shown = []; // the entries on the current page, in order
let matching = 0;

const rowTemplate = document.getElementById("pool-row").content.firstElementChild;

export const poolNames = () => [...pools.keys()];
export const hasPool = (name) => pools.has(name);

export function updatePools(feed) {
  const kinds = problemKinds(feed.problems);
  for (const [name, levels] of Object.entries(feed.pools)) {
    let entry = pools.get(name);
    if (!entry) {
      entry = { name, haystack: name.toLowerCase(), values: {} };
      pools.set(name, entry);
    }
    const aliases = feed.aliases[name] || [];
    entry.aliases = aliases;
    entry.haystack = [name, ...aliases].join(" ").toLowerCase();
    entry.levels = levels;
    entry.kind = kinds.get(name) || "";
    entry.health = feed.problems.degraded[name] || null;
    entry.autoscale = (feed.autoscale || {})[name] || null;
  }
  for (const name of pools.keys()) if (!(name in feed.pools)) pools.delete(name);
  drawPage();
}

function ratio(entry) {
  const [ready, , , size] = entry.levels;
  return size ? ready / size : 2; // pools sized 0 last
}

const byName = (a, b) => a.name.localeCompare(b.name);
const sorters = {
  name: byName,
  problems: (a, b) => (RANK[a.kind] ?? 9) - (RANK[b.kind] ?? 9) || ratio(a) - ratio(b) || byName(a, b),
  fill: (a, b) => ratio(a) - ratio(b) || byName(a, b),
  running: (a, b) => b.levels[2] - a.levels[2] || byName(a, b),
};

/** Filters, sorts and draws the current page; called on every poll and on each control's change. */
export function drawPage() {
  const terms = view.filter.toLowerCase().split(/[\s,]+/).filter(Boolean);
  const found = [...pools.values()].filter((e) => terms.every((t) => e.haystack.includes(t)));
  found.sort(sorters[view.sort]);
  matching = found.length;
  const pages = Math.max(1, Math.ceil(found.length / PAGE_SIZE));
  view.page = Math.min(view.page, pages);
  const start = (view.page - 1) * PAGE_SIZE;
  const page = found.slice(start, start + PAGE_SIZE);
  const now = Date.now();
  for (const entry of page) updateRow(entry, now);
  if (page.length !== shown.length || page.some((e, i) => e !== shown[i])) {
    shown = page;
    $("pool-rows").replaceChildren(...page.map((e) => e.row));
    markSelected();
  }
  setText($("pool-count"), terms.length ? `${fmt(found.length)} of ${fmt(pools.size)}` : fmt(pools.size));
  $("pool-empty").hidden = found.length > 0 || pools.size === 0;
  const first = found.length ? start + 1 : 0;
  setText($("page-info"), `${fmt(first)}–${fmt(start + page.length)} of ${fmt(found.length)}`);
  $("page-prev").disabled = view.page <= 1;
  $("page-next").disabled = view.page >= pages;
  document.querySelector(".pager").hidden = pages <= 1;
}

export function turnPage(step) {
  const pages = Math.max(1, Math.ceil(matching / PAGE_SIZE));
  view.page = Math.min(pages, Math.max(1, view.page + step));
  drawPage();
}

function buildRow(entry) {
  const row = rowTemplate.cloneNode(true);
  row.dataset.pool = entry.name;
  const q = (sel) => row.querySelector(sel);
  entry.row = row;
  entry.cells = {
    name: q(".name"),
    aliases: q(".aliases"),
    flag: q(".flag"),
    ready: q(".cell-ready b"),
    of: q(".cell-ready .of"),
    progress: q(".bar-pool"),
    segReady: q(".seg.ready"),
    segPending: q(".seg.pending"),
    barRunning: q(".bar-running"),
    pending: q(".cell-pending .v"),
    running: q(".cell-running .v"),
    boot: q(".cell-boot .v"),
    bootCell: q(".cell-boot"),
  };
  entry.cells.name.textContent = entry.name;
  entry.cells.name.title = `Show the history of ${entry.name} and who has its VMs`;
  entry.cells.progress.setAttribute("aria-label", `${entry.name} ready VMs`);
}

function updateRow(entry, now) {
  if (!entry.row) buildRow(entry);
  const { cells, values } = entry;
  const [ready, pending, running, size, lastBoot, waiting = 0] = entry.levels;
  const aliasText = entry.aliases.join(", ");
  if (values.aliasText !== aliasText) {
    values.aliasText = aliasText;
    cells.aliases.textContent = aliasText;
  }
  if (values.ready !== ready || values.size !== size || values.pending !== pending || values.running !== running) {
    Object.assign(values, { ready, size, pending, running });
    cells.ready.textContent = fmt(ready);
    cells.of.textContent = ` / ${fmt(size)}`;
    cells.pending.textContent = fmt(pending);
    cells.running.textContent = fmt(running);
    // one scale per row: the pool's slots and its running VMs side by side, each as wide as its
    // count (no cap), so 12 and 44 running look as different as they are
    const units = Math.max(size, ready + pending, 1);
    cells.segReady.style.width = `${(100 * ready) / units}%`;
    cells.segPending.style.width = `${(100 * pending) / units}%`;
    cells.progress.style.flexGrow = String(units);
    cells.barRunning.style.flexGrow = String(running);
    cells.barRunning.hidden = running === 0;
    cells.progress.setAttribute("aria-valuemax", String(size));
    cells.progress.setAttribute("aria-valuenow", String(Math.min(ready, size)));
    cells.progress.setAttribute("aria-valuetext", `${ready} of ${size} ready, ${pending} pending, ${running} running`);
  }
  const level = entry.health ? "degraded" : size === 0 ? "idle" : ready === 0 ? "empty" : ready < size ? "low" : "full";
  if (entry.row.dataset.level !== level) entry.row.dataset.level = level;
  // checkouts waiting their turn (docs/waiting.md) and an autoscaled pool's target are shown where a
  // degraded pool says why
  const queued = waiting ? `${fmt(waiting)} waiting` : "";
  const scaled = entry.autoscale ? autoscaleFlag(entry.autoscale) : "";
  const flag = entry.health
    ? `degraded: ${entry.health.problem || "cannot be filled"}`
    : [queued, scaled].filter(Boolean).join(" · ");
  if (values.flag !== flag) {
    values.flag = flag;
    cells.flag.textContent = flag;
    cells.flag.title = flag;
    cells.flag.dataset.kind = entry.health ? "degraded" : queued ? "waiting" : "";
  }
  setText(cells.boot, lastBoot ? ago(lastBoot * 1000, now) : "never");
  if (values.lastBoot !== lastBoot) {
    values.lastBoot = lastBoot;
    cells.bootCell.title = lastBoot ? new Date(lastBoot * 1000).toLocaleString() : "";
  }
}

/** An autoscaled pool's line: the manager's target and, once there were checkouts, the last day's SLO. */
function autoscaleFlag(scale) {
  const target = scale.target ?? "?";
  if (!scale.checkouts) return `autoscale: target ${target}`;
  const share = (100 * scale.attainment).toFixed(1);
  return `autoscale: target ${target} · ${share}% waited ≤ ${scale.wait}s (24h)`;
}

export function markSelected() {
  for (const entry of shown) {
    const selected = entry.name === view.pool;
    entry.row.classList.toggle("selected", selected);
    entry.cells.name.setAttribute("aria-pressed", String(selected));
  }
}
