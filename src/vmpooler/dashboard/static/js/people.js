// "Who has what running" (following the selected pool) and the on-demand requests in flight.

import { $, ago, duration, el, fmt, setText } from "./format.js";

let usersKey = "";
let ondemandKey = "";

function expiry(expires, now) {
  if (expires === null) return "no expiry";
  const left = expires * 1000 - now;
  return left > 0 ? `${duration(left / 1000)} left` : "expired";
}

export function renderUsers(holders) {
  setText($("users-scope"), holders.pool || "all pools");
  const now = Date.now();
  // minutes are enough for "3 h 20 min left": redraw when the holders or the minute change
  const key = JSON.stringify([holders, Math.floor(now / 60000)]);
  if (key === usersKey) return;
  usersKey = key;
  const fragment = document.createDocumentFragment();
  for (const { user, vms, pools, hosts, more } of holders.users) {
    const tr = document.createElement("tr");
    const who = el("th", user === "anonymous" ? "muted" : "", user);
    who.scope = "row";
    const where = Object.entries(pools)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([pool, n]) => `${pool} ${fmt(n)}`)
      .join(", ");
    who.append(el("span", "where", where));
    const held = el("td", "hosts");
    for (const [host, pool, expires] of hosts) {
      const chip = el("span", "chip", `${host} `);
      chip.title = `${pool}${expires ? `, expires ${new Date(expires * 1000).toLocaleString()}` : ""}`;
      chip.append(el("small", expires !== null && expires * 1000 - now < 3600000 ? "soon" : "", expiry(expires, now)));
      held.append(chip);
    }
    if (more) held.append(el("span", "muted", `and ${fmt(more)} more`));
    tr.append(who, el("td", "num", fmt(vms)), held);
    fragment.append(tr);
  }
  if (holders.more) {
    const tr = document.createElement("tr");
    const td = el("td", "muted", `and ${fmt(holders.more)} more users`);
    td.colSpan = 3;
    tr.append(td);
    fragment.append(tr);
  }
  $("user-rows").replaceChildren(fragment);
  $("users-empty").hidden = holders.users.length > 0;
  setText($("users-empty"), holders.pool ? `No VM of ${holders.pool} is checked out.` : "No VMs are checked out.");
}

export function renderOndemand(requests) {
  const now = Date.now();
  const key = JSON.stringify([requests, Math.floor(now / 10000)]);
  if (key === ondemandKey) return;
  ondemandKey = key;
  const fragment = document.createDocumentFragment();
  for (const { id, user, created, items } of requests) {
    const tr = document.createElement("tr");
    const name = el("th", "request", id);
    name.scope = "row";
    if (created) name.append(el("span", "where", `asked ${ago(created * 1000, now)}`));
    const got = el("td");
    for (const [pool, count, delivered] of items) {
      const chip = el("span", "chip", `${pool} `);
      chip.append(el("b", "", `${fmt(delivered)}/${fmt(count)}`));
      got.append(chip);
    }
    tr.append(name, el("td", user === "anonymous" ? "muted" : "", user), got);
    fragment.append(tr);
  }
  $("ondemand-rows").replaceChildren(fragment);
  $("ondemand-empty").hidden = requests.length > 0;
  setText($("ondemand-count"), requests.length ? fmt(requests.length) : "");
}
