// Small helpers the other modules share: element lookup, number and time formatting.

export const $ = (id) => document.getElementById(id);

const numberFormat = new Intl.NumberFormat();
export const fmt = (n) => numberFormat.format(n);

/** Sets an element's text only when it changed (no needless layout work on a poll). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function seconds(value) {
  return value ? value.toFixed(value < 10 ? 2 : 1) : "0";
}

export function oneDecimal(value) {
  return (value || 0).toFixed(1);
}

export function plural(n, one, many = `${one}s`) {
  return `${fmt(n)} ${n === 1 ? one : many}`;
}

/** An element with a class and text, for the lists built from the feed. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
