// The vmpooler dashboard: polls the API's JSON feeds and draws them. No build step, no framework.
//
// Feeds: /api/v3/status (levels, every `refresh` ms), /dashboard/stats/vmpooler/users (with it),
// /api/v3/history (charts, every `history_refresh` ms and on a range or pool change),
// /api/v3/full_config (site name) and /api/v3/config (pool templates), once.
// Query parameters: refresh=<ms> (default 5000), history_refresh=<ms> (default 60000), and the
// view state q, pool, range, sort, which the page keeps in the address so a wall screen reloads as it was.

const params = new URLSearchParams(location.search);
const REFRESH_MS = intParam("refresh", 5000, 100);
const HISTORY_MS = intParam("history_refresh", 60000, 100);
const REQUEST_TIMEOUT_MS = 15000;
const RANGES = { "1h": 3600, "1d": 86400, "7d": 7 * 86400 };
const MAX_USERS = 50;

const $ = (id) => document.getElementById(id);
const numberFormat = new Intl.NumberFormat();
const fmt = (n) => numberFormat.format(n);

const view = {
  filter: params.get("q") || "",
  sort: ["name", "fill", "running"].includes(params.get("sort")) ? params.get("sort") : "name",
  range: RANGES[params.get("range")] ? params.get("range") : "1h",
  pool: params.get("pool") || "",
};

/** name -> {row, cells, values, haystack} */
const rows = new Map();
let lastSuccess = null;
let usersKey = "";
let historySeq = 0;
let lastHistory = null;
let historyTimer = 0;
/** The time window every chart shows, [from, to] in epoch seconds: the whole range, however sparse the data. */
let chartWindow = [Date.now() / 1000 - 3600, Date.now() / 1000];

function intParam(name, fallback, minimum) {
  const value = Number.parseInt(params.get(name) ?? "", 10);
  return Number.isFinite(value) ? Math.max(minimum, value) : fallback;
}

// ---- fetching ---------------------------------------------------------------------------------

class FeedError extends Error {}

async function getJSON(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, { signal: controller.signal, headers: { Accept: "application/json" } });
  } catch (err) {
    throw new FeedError(err.name === "AbortError" ? "the request timed out" : "the server cannot be reached");
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // an error page from a proxy, say; the status code tells enough
  }
  if (!response.ok) {
    const reason = body && typeof body.error === "string" ? `: ${body.error}` : "";
    throw new FeedError(`HTTP ${response.status}${reason}`);
  }
  if (body === null) throw new FeedError("the reply was not JSON");
  return body;
}

// ---- formatting -------------------------------------------------------------------------------

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** Epoch ms from the original's "2024-05-01 12:00:00 +0000", an ISO string or a number. */
function parseTime(value) {
  if (!value) return null;
  const ruby = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ?([+-]\d\d):?(\d\d)$/.exec(value);
  const ms = ruby ? Date.parse(`${ruby[1]}T${ruby[2]}${ruby[3]}:${ruby[4]}`) : Date.parse(value);
  if (Number.isFinite(ms)) return ms;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? seconds * 1000 : null;
}

function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function seconds(value) {
  return value ? value.toFixed(value < 10 ? 2 : 1) : "0";
}

function oneDecimal(value) {
  return (value || 0).toFixed(1);
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// ---- header and summary tiles -----------------------------------------------------------------

function renderSummary(status) {
  const health = status.status || {};
  const healthEl = $("health");
  healthEl.dataset.state = health.ok ? "ok" : "bad";
  setText($("health-text"), health.ok ? "No empty pools" : health.message || "Unhealthy");
  healthEl.title = health.message || "";
  if (typeof health.uptime === "number") setText($("uptime"), `· API up ${duration(health.uptime)}`);

  const capacity = status.capacity || { current: 0, total: 0, percent: 0 };
  const percent = Math.max(0, Math.min(100, capacity.percent));
  setText($("capacity-percent"), String(Math.round(capacity.percent)));
  setText($("capacity-current"), fmt(capacity.current));
  setText($("capacity-total"), fmt(capacity.total));
  const meter = $("capacity-meter");
  meter.setAttribute("aria-valuenow", String(percent));
  meter.setAttribute("aria-valuetext", `${capacity.current} of ${capacity.total} VMs ready (${capacity.percent}%)`);
  meter.firstElementChild.style.width = `${percent}%`;
  meter.dataset.level = percent >= 90 ? "ok" : percent >= 50 ? "low" : "bad";

  const queue = status.queue || {};
  for (const key of ["ready", "running", "pending", "completed", "cloning", "booting"]) {
    setText($(`queue-${key}`), fmt(queue[key] ?? 0));
  }
  for (const kind of ["clone", "boot"]) {
    const stats = status[kind];
    if (!stats) continue;
    setText($(`${kind}-average`), seconds(stats.duration.average));
    const count = stats.count.total;
    setText(
      $(`${kind}-detail`),
      count
        ? `${fmt(count)} today · ${oneDecimal(stats.duration.min)}–${oneDecimal(stats.duration.max)} s`
        : "none today",
    );
  }
}

// ---- pool rows --------------------------------------------------------------------------------
// Rows are built once per pool and then only their changed figures are written, so a 500-pool
// site costs a few hundred text updates per poll, not a re-render.

const rowTemplate = document.getElementById("pool-row").content.firstElementChild;

function buildRow(name) {
  const row = rowTemplate.cloneNode(true);
  row.dataset.pool = name;
  const q = (sel) => row.querySelector(sel);
  const entry = {
    row,
    name,
    aliases: [],
    haystack: name.toLowerCase(),
    values: {},
    cells: {
      name: q(".name"),
      aliases: q(".aliases"),
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
    },
  };
  entry.cells.name.textContent = name;
  entry.cells.name.title = `Show the history of ${name}`;
  entry.cells.progress.setAttribute("aria-label", `${name} ready VMs`);
  return entry;
}

function aliasesOf(value) {
  if (!value) return [];
  return Array.isArray(value) ? value : [value];
}

function updateRow(entry, pool, now) {
  const { cells, values } = entry;
  const ready = pool.ready ?? 0;
  const pending = pool.pending ?? 0;
  const running = pool.running ?? 0;
  const size = pool.max ?? 0;
  const aliases = aliasesOf(pool.alias);
  const aliasText = aliases.join(", ");
  if (values.aliasText !== aliasText) {
    values.aliasText = aliasText;
    entry.aliases = aliases;
    entry.haystack = [entry.name, ...aliases].join(" ").toLowerCase();
    cells.aliases.textContent = aliasText;
  }
  if (values.ready !== ready || values.size !== size || values.pending !== pending || values.running !== running) {
    Object.assign(values, { ready, size, pending, running });
    cells.ready.textContent = fmt(ready);
    cells.of.textContent = ` / ${fmt(size)}`;
    cells.pending.textContent = fmt(pending);
    cells.running.textContent = fmt(running);
    const units = Math.max(size, ready + pending, 1);
    cells.segReady.style.width = `${(100 * ready) / units}%`;
    cells.segPending.style.width = `${(100 * pending) / units}%`;
    cells.progress.style.flexGrow = String(units);
    cells.barRunning.style.flexGrow = String(running);
    cells.barRunning.hidden = running === 0;
    cells.progress.setAttribute("aria-valuemax", String(size));
    cells.progress.setAttribute("aria-valuenow", String(Math.min(ready, size)));
    cells.progress.setAttribute("aria-valuetext", `${ready} of ${size} ready, ${pending} pending, ${running} running`);
    entry.row.dataset.level = size === 0 ? "idle" : ready === 0 ? "empty" : ready < size ? "low" : "full";
  }
  const booted = parseTime(pool.lastBoot);
  setText(cells.boot, booted === null ? "never" : ago(booted, now));
  if (values.lastBoot !== pool.lastBoot) {
    values.lastBoot = pool.lastBoot;
    cells.bootCell.title = booted === null ? "" : new Date(booted).toLocaleString();
  }
}

function renderPools(pools) {
  const now = Date.now();
  const names = Object.keys(pools);
  let changed = names.length !== rows.size;
  const fragment = document.createDocumentFragment();
  for (const name of names) {
    let entry = rows.get(name);
    if (!entry) {
      entry = buildRow(name);
      rows.set(name, entry);
      fragment.append(entry.row);
      changed = true;
    }
    updateRow(entry, pools[name], now);
  }
  for (const [name, entry] of rows) {
    if (!(name in pools)) {
      entry.row.remove();
      rows.delete(name);
      changed = true;
    }
  }
  if (fragment.childNodes.length) $("pool-rows").append(fragment);
  if (changed) {
    refreshPoolChoices();
    applyFilter();
  }
  applySort(changed);
}

const sorters = {
  name: (a, b) => a.name.localeCompare(b.name),
  fill: (a, b) => fill(a) - fill(b) || a.name.localeCompare(b.name),
  running: (a, b) => (b.values.running ?? 0) - (a.values.running ?? 0) || a.name.localeCompare(b.name),
};

function fill(entry) {
  const { ready = 0, size = 0 } = entry.values;
  return size ? ready / size : 2; // pools sized 0 last
}

let shownOrder = [];

function applySort(force) {
  const ordered = [...rows.values()].sort(sorters[view.sort]);
  if (!force && ordered.length === shownOrder.length && ordered.every((e, i) => e === shownOrder[i])) return;
  shownOrder = ordered;
  const body = $("pool-rows");
  const fragment = document.createDocumentFragment();
  for (const entry of ordered) fragment.append(entry.row);
  body.append(fragment);
}

function applyFilter() {
  const terms = view.filter.toLowerCase().split(/[\s,]+/).filter(Boolean);
  let shown = 0;
  for (const entry of rows.values()) {
    const match = terms.every((t) => entry.haystack.includes(t));
    if (entry.row.hidden === match) entry.row.hidden = !match;
    if (match) shown += 1;
  }
  setText($("pool-count"), terms.length ? `${fmt(shown)} of ${fmt(rows.size)}` : fmt(rows.size));
  $("pool-empty").hidden = shown > 0 || rows.size === 0;
}

function markSelectedRow() {
  for (const entry of rows.values()) {
    const selected = entry.name === view.pool;
    if (entry.row.classList.contains("selected") !== selected) entry.row.classList.toggle("selected", selected);
    entry.cells.name.setAttribute("aria-pressed", String(selected));
  }
}

function refreshPoolChoices() {
  const select = $("history-pool");
  const names = [...rows.keys()].sort((a, b) => a.localeCompare(b));
  const fragment = document.createDocumentFragment();
  fragment.append(new Option("All pools", ""));
  for (const name of names) fragment.append(new Option(name, name));
  select.replaceChildren(fragment);
  if (view.pool && !rows.has(view.pool)) view.pool = "";
  select.value = view.pool;
  markSelectedRow();
}

// ---- users ------------------------------------------------------------------------------------

function renderUsers(users) {
  const key = JSON.stringify(users);
  if (key === usersKey) return;
  usersKey = key;
  const list = Object.entries(users)
    .map(([user, pools]) => ({ user, pools, total: Object.values(pools).reduce((a, b) => a + b, 0) }))
    .sort((a, b) => b.total - a.total || a.user.localeCompare(b.user));
  const fragment = document.createDocumentFragment();
  for (const { user, pools, total } of list.slice(0, MAX_USERS)) {
    const tr = document.createElement("tr");
    const who = document.createElement("th");
    who.scope = "row";
    who.textContent = user;
    if (user === "anonymous") who.className = "muted";
    const count = document.createElement("td");
    count.className = "num";
    count.textContent = fmt(total);
    const where = document.createElement("td");
    for (const [pool, n] of Object.entries(pools).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = `${pool} `;
      const b = document.createElement("b");
      b.textContent = fmt(n);
      chip.append(b);
      where.append(chip);
    }
    tr.append(who, count, where);
    fragment.append(tr);
  }
  if (list.length > MAX_USERS) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 3;
    td.className = "muted";
    td.textContent = `and ${fmt(list.length - MAX_USERS)} more users`;
    tr.append(td);
    fragment.append(tr);
  }
  $("user-rows").replaceChildren(fragment);
  $("users-empty").hidden = list.length > 0;
}

// ---- connection state -------------------------------------------------------------------------

/** What is failing now, per feed: null or the reason. The banner shows until every feed answers again. */
const problems = { status: null, history: null };

function report(feed, err) {
  if (err && !(err instanceof FeedError)) console.error(err); // a bug of ours, not the API's
  problems[feed] = err ? (err instanceof FeedError ? err.message : "unexpected reply") : null;
  const banner = $("error-banner");
  const retry = `Retrying every ${REFRESH_MS / 1000} s.`;
  document.body.classList.toggle("stale", problems.status !== null);
  if (problems.status !== null) {
    const since = lastSuccess ? ` The figures shown are from ${clock(lastSuccess)}.` : "";
    banner.textContent = `Cannot load data from the vmpooler API (${problems.status}). ${retry}${since}`;
    $("health").dataset.state = "unknown";
    setText($("health-text"), lastSuccess ? "Connection lost" : "No data");
  } else if (problems.history !== null) {
    banner.textContent = `Cannot load the history (${problems.history}); the charts show the last loaded. ${retry}`;
  }
  banner.hidden = problems.status === null && problems.history === null;
}

function updated() {
  lastSuccess = new Date();
  setText($("updated"), `Updated ${clock(lastSuccess)}`);
  const pulse = document.querySelector(".pulse");
  pulse.classList.remove("beat");
  void pulse.offsetWidth; // restart the animation
  pulse.classList.add("beat");
}

// ---- polling ----------------------------------------------------------------------------------

async function pollStatus() {
  try {
    const [status, users] = await Promise.all([
      getJSON("/api/v3/status"),
      getJSON("/dashboard/stats/vmpooler/users"),
    ]);
    renderSummary(status);
    renderPools(status.pools || {});
    renderUsers(users.users || {});
    updated();
    report("status", null);
  } catch (err) {
    report("status", err);
  } finally {
    setTimeout(pollStatus, REFRESH_MS);
  }
}

async function pollHistory() {
  clearTimeout(historyTimer);
  const seq = ++historySeq;
  const pool = view.pool;
  const query = new URLSearchParams({ range: view.range });
  if (pool) query.set("pool", pool);
  else query.set("series", "overall"); // all pools: only their sum is drawn
  let next = HISTORY_MS;
  try {
    const reply = await getJSON(`/api/v3/history?${query}`);
    if (seq !== historySeq) return; // the range or pool changed meanwhile
    const points = pool ? reply.pools[pool] || [] : reply.overall;
    lastHistory = { range: view.range, resolution: reply.resolution, points };
    drawCharts();
    report("history", null);
  } catch (err) {
    if (seq !== historySeq) return;
    report("history", err);
    next = Math.min(HISTORY_MS, REFRESH_MS);
  } finally {
    if (seq === historySeq) historyTimer = setTimeout(pollHistory, next);
  }
}

async function loadSiteName() {
  try {
    const reply = await getJSON("/api/v3/full_config");
    const name = reply.full_config?.config?.site_name;
    if (name) {
      $("site-name").textContent = name;
      document.title = `${name} · vmpooler`;
    }
  } catch {
    // the default title stands; the status poll reports a broken API
  }
}

async function loadPoolDetails() {
  try {
    const reply = await getJSON("/api/v3/config");
    for (const pool of reply.pool_configuration || []) {
      const entry = rows.get(pool.name);
      if (entry) entry.cells.name.title = `${pool.name}: ${pool.template} on ${pool.provider}. Show its history.`;
    }
  } catch {
    // tooltips only
  }
}

// ---- charts -----------------------------------------------------------------------------------

const charts = new Map(); // kind -> uPlot

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

function drawCharts() {
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

function resizeCharts() {
  for (const [kind, chart] of charts) {
    const target = document.querySelector(`figure[data-chart="${kind}"] .plot`);
    const width = Math.max(200, target.clientWidth);
    if (width !== chart.width) chart.setSize({ width, height: chart.height });
  }
}

function rebuildCharts() {
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
  drawCharts();
}

// ---- controls ---------------------------------------------------------------------------------

function saveView() {
  const next = new URLSearchParams(location.search);
  const set = (key, value, fallback) => (value && value !== fallback ? next.set(key, value) : next.delete(key));
  set("q", view.filter, "");
  set("sort", view.sort, "name");
  set("range", view.range, "1h");
  set("pool", view.pool, "");
  const query = next.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

function selectPool(name) {
  view.pool = name;
  $("history-pool").value = name;
  setText($("history-scope"), name || "all pools");
  markSelectedRow();
  saveView();
  pollHistory();
}

function selectRange(range) {
  view.range = range;
  for (const button of document.querySelectorAll("[data-range]")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === range));
  }
  saveView();
  pollHistory();
}

function wireControls() {
  const filter = $("filter");
  filter.value = view.filter;
  let pending = 0;
  filter.addEventListener("input", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      view.filter = filter.value.trim();
      applyFilter();
      saveView();
    });
  });
  filter.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      filter.value = "";
      filter.dispatchEvent(new Event("input"));
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && document.activeElement !== filter && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      filter.focus();
    }
  });

  const sort = $("sort");
  sort.value = view.sort;
  sort.addEventListener("change", () => {
    view.sort = sort.value;
    applySort(true);
    saveView();
  });

  $("history-pool").addEventListener("change", (event) => selectPool(event.target.value));
  $("pool-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button.name");
    if (!button) return;
    const name = button.closest(".pool-row").dataset.pool;
    selectPool(view.pool === name ? "" : name);
    const card = document.querySelector(".history-card");
    const box = card.getBoundingClientRect();
    if (box.top < 0 || box.top > innerHeight) card.scrollIntoView({ behavior: "smooth", block: "start" });
  });
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => selectRange(button.dataset.range));
  }

  new ResizeObserver(() => requestAnimationFrame(resizeCharts)).observe(document.querySelector(".charts"));
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuildCharts);
}

function start() {
  wireControls();
  setText($("history-scope"), view.pool || "all pools");
  for (const button of document.querySelectorAll("[data-range]")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === view.range));
  }
  loadSiteName();
  pollStatus().then(loadPoolDetails);
  pollHistory();
}

start();
