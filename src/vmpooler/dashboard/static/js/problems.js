// The first thing on the page: which pools are wrong and how (degraded, empty, failing, filling),
// worst first, and the header pill that counts them and links to the worst.

import { $, duration, el, fmt, plural, setText } from "./format.js";

export const KINDS = ["degraded", "empty", "failing", "filling"];
const LABELS = { degraded: "Degraded", empty: "Empty", failing: "Failing", filling: "Filling" };
/** rows drawn at most; the pool list sorted "problems first" has the rest */
const MAX_ROWS = 200;

const rowTemplate = document.getElementById("problem-row").content.firstElementChild;
let drawnKey = "";

/** pool name -> its kind, the worst one when several apply; the pool list sorts by it */
export function problemKinds(problems) {
  const kinds = new Map();
  for (const kind of KINDS) {
    const members = Array.isArray(problems[kind]) ? problems[kind] : Object.keys(problems[kind] || {});
    for (const name of members) if (!kinds.has(name)) kinds.set(name, kind);
  }
  return kinds;
}

function describe(kind, name, feed, now) {
  const [ready, pending, , size] = feed.pools[name] || [0, 0, 0, 0];
  const minutes = feed.problems.minutes;
  const levels = `${fmt(ready)} of ${fmt(size)} ready · ${fmt(pending)} pending`;
  if (kind === "degraded") {
    const health = feed.problems.degraded[name];
    const failures = `${plural(health.failures ?? 0, "failed clone")} in ${minutes} min`;
    const probe = health.retry_at ? `next probe ${probeIn(health.retry_at * 1000 - now)}` : "no probe scheduled";
    return { what: health.problem || "cannot be filled", when: `${failures} · ${probe}` };
  }
  if (kind === "failing") {
    const { failures, clones } = feed.problems.failing[name];
    return { what: `${fmt(failures)} of ${fmt(failures + clones)} clones failed in ${minutes} min`, when: levels };
  }
  return { what: levels, when: "" };
}

function probeIn(ms) {
  return ms <= 0 ? "now" : `in ${duration(ms / 1000)}`;
}

export function renderProblems(feed, onPick) {
  const kinds = problemKinds(feed.problems);
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0]));
  for (const kind of kinds.values()) counts[kind] += 1;
  for (const item of $("problem-kinds").children) {
    const n = counts[item.dataset.kind];
    setText(item.firstElementChild, fmt(n));
    item.dataset.zero = String(n === 0);
  }
  const total = kinds.size;
  setText($("problem-count"), total ? `${fmt(total)} of ${fmt(Object.keys(feed.pools).length)} pools` : "");
  $("no-problems").hidden = total > 0;
  renderPill(counts, kinds);

  const now = Date.now();
  const list = [...kinds].slice(0, MAX_ROWS);
  const key = JSON.stringify([list, feed.problems, list.map(([name]) => feed.pools[name])]);
  if (key !== drawnKey) {
    drawnKey = key;
    $("problem-rows").replaceChildren(buildRows(list, kinds.size, feed, now, onPick));
  }
  // rows stay (focus, hover, a test's handle on them); only the breaker's countdown moves on
  for (const row of $("problem-rows").querySelectorAll('.problem[data-kind="degraded"]')) {
    setText(row.querySelector(".when"), describe("degraded", row.dataset.pool, feed, now).when);
  }
}

function buildRows(list, total, feed, now, onPick) {
  const fragment = document.createDocumentFragment();
  for (const [name, kind] of list) {
    const row = rowTemplate.cloneNode(true);
    row.id = `problem-${name}`;
    row.dataset.kind = kind;
    row.dataset.pool = name;
    const { what, when } = describe(kind, name, feed, now);
    row.querySelector(".kind").textContent = LABELS[kind];
    const button = row.querySelector(".name");
    button.textContent = name;
    button.title = `Show the history of ${name} and who has its VMs`;
    button.addEventListener("click", () => onPick(name));
    const whatEl = row.querySelector(".what");
    whatEl.textContent = what;
    whatEl.title = what;
    row.querySelector(".when").textContent = when;
    fragment.append(row);
  }
  if (total > list.length) {
    fragment.append(el("li", "more muted", `and ${fmt(total - list.length)} more: sort the pool list by problems`));
  }
  return fragment;
}

function renderPill(counts, kinds) {
  const pill = $("health");
  const alarming = ["degraded", "empty", "failing"].filter((k) => counts[k] > 0);
  pill.dataset.state = alarming.length ? "bad" : "ok";
  const text = alarming.length
    ? alarming.map((k) => `${fmt(counts[k])} ${k}`).join(" · ")
    : counts.filling
      ? `No empty pools · ${fmt(counts.filling)} filling`
      : "No empty pools";
  setText($("health-text"), text);
  const worst = [...kinds][0];
  pill.href = worst ? `#problem-${encodeURIComponent(worst[0])}` : "#problems";
  pill.title = alarming.length ? "Show the problem pools" : "";
}
