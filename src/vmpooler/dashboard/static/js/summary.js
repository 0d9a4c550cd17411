// The summary tiles: capacity, the queue, and today's clone and boot times.

import { $, duration, fmt, oneDecimal, seconds, setText } from "./format.js";

export function renderSummary(feed) {
  const capacity = feed.capacity || { current: 0, total: 0, percent: 0 };
  const percent = Math.max(0, Math.min(100, capacity.percent));
  setText($("capacity-percent"), String(Math.round(capacity.percent)));
  setText($("capacity-current"), fmt(capacity.current));
  setText($("capacity-total"), fmt(capacity.total));
  const meter = $("capacity-meter");
  meter.setAttribute("aria-valuenow", String(percent));
  meter.setAttribute("aria-valuetext", `${capacity.current} of ${capacity.total} VMs ready (${capacity.percent}%)`);
  meter.firstElementChild.style.width = `${percent}%`;
  meter.dataset.level = percent >= 90 ? "ok" : percent >= 50 ? "low" : "bad";

  const queue = feed.queue || {};
  for (const key of ["ready", "running", "pending", "completed", "cloning", "booting"]) {
    setText($(`queue-${key}`), fmt(queue[key] ?? 0));
  }
  for (const kind of ["clone", "boot"]) {
    const stats = feed[kind];
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

export function renderSite(site) {
  if (site.name && $("site-name").textContent !== site.name) {
    $("site-name").textContent = site.name;
    document.title = `${site.name} · vmpooler`;
  }
  if (site.started) setText($("uptime"), `· API up ${duration(Date.now() / 1000 - site.started)}`);
}
