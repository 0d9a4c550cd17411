// Fetching the JSON feeds: a timeout, errors in words, and If-None-Match so an unchanged feed
// costs a 304 with no body.

const REQUEST_TIMEOUT_MS = 15000;

export class FeedError extends Error {}

/** url -> [etag, body] of the last full reply */
const known = new Map();

/**
 * The body of a JSON feed, and whether it changed since the last call for the same URL
 * (a 304 answers "no" and reuses the body kept from before).
 */
export async function getJSON(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = { Accept: "application/json" };
  const previous = known.get(url);
  if (previous) headers["If-None-Match"] = previous[0];
  let response;
  try {
    // no-store: the page keeps the last body itself; the browser cache would only keep a second copy
    response = await fetch(url, { signal: controller.signal, headers, cache: "no-store" });
  } catch (err) {
    throw new FeedError(err.name === "AbortError" ? "the request timed out" : "the server cannot be reached");
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 304 && previous) {
    await response.arrayBuffer(); // read to its (empty) end: an unread reply counts as aborted
    return { body: previous[1], changed: false };
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
  const etag = response.headers.get("ETag");
  if (etag) known.set(url, [etag, body]);
  return { body, changed: true };
}
