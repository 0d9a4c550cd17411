// The view state (filter, sort, page, pool, range) and the address bar that keeps it, so a wall
// screen reloads as it was.

const params = new URLSearchParams(location.search);

export const RANGES = { "1h": 3600, "1d": 86400, "7d": 7 * 86400 };
export const SORTS = ["problems", "name", "fill", "running"];

function intParam(name, fallback, minimum) {
  const value = Number.parseInt(params.get(name) ?? "", 10);
  return Number.isFinite(value) ? Math.max(minimum, value) : fallback;
}

export const REFRESH_MS = intParam("refresh", 5000, 100);
export const HISTORY_MS = intParam("history_refresh", 60000, 100);

export const view = {
  filter: params.get("q") || "",
  sort: SORTS.includes(params.get("sort")) ? params.get("sort") : "problems",
  range: RANGES[params.get("range")] ? params.get("range") : "1h",
  pool: params.get("pool") || "",
  page: intParam("page", 1, 1),
};

export function saveView() {
  const next = new URLSearchParams(location.search);
  const set = (key, value, fallback) => (value && value !== fallback ? next.set(key, value) : next.delete(key));
  set("q", view.filter, "");
  set("sort", view.sort, "problems");
  set("range", view.range, "1h");
  set("pool", view.pool, "");
  set("page", String(view.page), "1");
  const query = next.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}
