// The vmpooler dashboard: polls the API's feeds and draws them. No build step, no framework.
//
// Feeds (docs/dashboard.md): /dashboard/feed (levels, problems, who has what, on-demand requests;
// every `refresh` ms, answered 304 while nothing changed) and /api/v3/history (the charts, every
// `history_refresh` ms and on a range or pool change). Query parameters: refresh=<ms> (default 5000),
// history_refresh=<ms> (default 60000), and the view state q, sort, page, pool, range, which the page
// keeps in the address so a wall screen reloads as it was.

import { FeedError, getJSON } from "./api.js";
import { drawCharts, rebuildCharts, resizeCharts } from "./charts.js";
import { $, clock, setText } from "./format.js";
import { renderOndemand, renderUsers } from "./people.js";
import { drawPage, hasPool, markSelected, poolNames, turnPage, updatePools } from "./pools.js";
import { renderProblems } from "./problems.js";
import { renderSite, renderSummary } from "./summary.js";
import { HISTORY_MS, REFRESH_MS, view, saveView } from "./view.js";

let lastSuccess = null;
let historySeq = 0;
let historyTimer = 0;
let feedTimer = 0;
let feedSeq = 0;
let poolChoices = "";

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

function feedURL() {
  return view.pool ? `/dashboard/feed?pool=${encodeURIComponent(view.pool)}` : "/dashboard/feed";
}

async function pollFeed() {
  clearTimeout(feedTimer);
  const seq = ++feedSeq;
  try {
    const { body, changed } = await getJSON(feedURL());
    if (seq !== feedSeq) return; // the pool changed meanwhile
    if (changed) {
      renderSite(body.site);
      renderSummary(body);
      updatePools(body);
      refreshPoolChoices();
      renderUsers(body.holders);
    } else {
      drawPage(); // "booted … ago" moves on
    }
    // both tell the time left or waited, so they are drawn again either way (each skips when unchanged)
    renderProblems(body, (name) => selectPool(name, true));
    renderOndemand(body.ondemand);
    updated();
    report("status", null);
    if (!performance.getEntriesByName("first-render").length) performance.mark("first-render");
  } catch (err) {
    if (seq !== feedSeq) return;
    report("status", err);
  } finally {
    if (seq === feedSeq) feedTimer = setTimeout(pollFeed, REFRESH_MS);
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
    const { body } = await getJSON(`/api/v3/history?${query}`);
    if (seq !== historySeq) return; // the range or pool changed meanwhile
    const points = pool ? body.pools[pool] || [] : body.overall;
    drawCharts({ range: view.range, resolution: body.resolution, points });
    report("history", null);
  } catch (err) {
    if (seq !== historySeq) return;
    report("history", err);
    next = Math.min(HISTORY_MS, REFRESH_MS);
  } finally {
    if (seq === historySeq) historyTimer = setTimeout(pollHistory, next);
  }
}

// ---- controls ---------------------------------------------------------------------------------

function refreshPoolChoices() {
  const names = poolNames().sort((a, b) => a.localeCompare(b));
  const key = names.join("\n");
  if (key !== poolChoices) {
    poolChoices = key;
    const fragment = document.createDocumentFragment();
    fragment.append(new Option("All pools", ""));
    for (const name of names) fragment.append(new Option(name, name));
    $("history-pool").replaceChildren(fragment);
  }
  if (view.pool && !hasPool(view.pool)) selectPool("");
  $("history-pool").value = view.pool;
}

function showScope() {
  setText($("history-scope"), view.pool || "all pools");
  setText($("users-scope"), view.pool || "all pools");
  setText(
    $("boot-scope"),
    view.pool ? `p50 and p90 of ${view.pool}'s boots, seconds` : "p50 and p90 of every boot in all pools, seconds",
  );
}

function selectPool(name, reveal = false) {
  view.pool = name;
  $("history-pool").value = name;
  showScope();
  markSelected();
  saveView();
  pollHistory();
  pollFeed(); // "who has what" follows the pool
  if (reveal) {
    const card = document.querySelector(".history-card");
    const box = card.getBoundingClientRect();
    if (box.top < 0 || box.top > innerHeight) card.scrollIntoView({ behavior: "smooth", block: "start" });
  }
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
      view.page = 1;
      drawPage();
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
    view.page = 1;
    drawPage();
    saveView();
  });
  for (const [id, step] of [["page-prev", -1], ["page-next", 1]]) {
    $(id).addEventListener("click", () => {
      turnPage(step);
      saveView();
    });
  }

  $("history-pool").addEventListener("change", (event) => selectPool(event.target.value));
  $("pool-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button.name");
    if (!button) return;
    const name = button.closest(".pool-row").dataset.pool;
    selectPool(view.pool === name ? "" : name, true);
  });
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => selectRange(button.dataset.range));
  }

  new ResizeObserver(() => requestAnimationFrame(resizeCharts)).observe(document.querySelector(".charts"));
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuildCharts);
}

function start() {
  wireControls();
  showScope();
  for (const button of document.querySelectorAll("[data-range]")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === view.range));
  }
  pollFeed();
  pollHistory();
}

start();
