"""What ``GET /api/v3/events`` does, no HTTP: resume point, filters, the cap, and the SSE text."""

from __future__ import annotations

import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from vmpooler.errors import BadRequest, ServiceUnavailable, StoreError
from vmpooler.store.event_follow import EventFollower
from vmpooler.store.eventlog import Event
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.api")

STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
#: filter values per parameter, each at most this long: a filter is not a way to send a large request
MAX_FILTER_VALUES = 50
#: browsers' EventSource waits this long (ms) before it reconnects
RETRY_MS = 2000


class TooManyStreams(ServiceUnavailable):
    headers = {"Retry-After": "5"}


def _values(params: Mapping[str, str], name: str) -> frozenset[str]:
    raw = params.get(name, "")
    found = frozenset(v.strip() for v in raw.split(",") if v.strip())
    if len(found) > MAX_FILTER_VALUES or any(len(v) > 255 for v in found):
        raise BadRequest(f"?{name}= takes at most {MAX_FILTER_VALUES} comma-separated values of up to 255 characters")
    return found


@dataclass(frozen=True, slots=True)
class EventFilter:
    """``?pool=``, ``?vm=``, ``?owner=`` match exactly (comma: any of); ``?type=`` too, or as a prefix when
    a value ends with ``.`` or ``*`` (``type=vm.`` is every VM event)."""

    pools: frozenset[str] = frozenset()
    vms: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> EventFilter:
        return cls(_values(params, "pool"), _values(params, "vm"), _values(params, "owner"), _values(params, "type"))

    def matches(self, event: Event) -> bool:
        return (
            (not self.pools or event.pool in self.pools)
            and (not self.vms or event.vm in self.vms)
            and (not self.owners or event.owner in self.owners)
            and (not self.types or any(_type_matches(t, event.type) for t in self.types))
        )


def _type_matches(wanted: str, actual: str) -> bool:
    if wanted.endswith(("*", ".")):
        return actual.startswith(wanted.rstrip("*"))
    return actual == wanted


def sse(event: Event) -> str:
    """One server-sent event: ``id:`` is the stream id (what a client sends back as Last-Event-ID)."""
    return f"id: {event.id}\ndata: {json.dumps(event.as_dict(), separators=(',', ':'))}\n\n"


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class EventStreams:
    """At most ``max_streams`` followers at once per API process, each on its own Redis connection."""

    def __init__(self, store: Store, max_streams: int, keepalive_seconds: float = 15.0) -> None:
        self.store = store
        self.max_streams = max_streams
        self.keepalive_seconds = keepalive_seconds
        self.active = 0

    async def start(self, since: str | None, wanted: EventFilter, once: bool = False) -> AsyncIterator[str]:
        """Check the request and take a slot now (so a refusal is a JSON reply, not a broken stream);
        the returned iterator gives the stream's text and frees the slot when it ends. With ``once`` it
        ends after the events that exist now (``vmpooler events`` without --follow)."""
        if since is not None and since not in ("$", "now") and not STREAM_ID.fullmatch(since):
            raise BadRequest(f"resume point {since[:40]!r} is not an event id such as 1733420000000-0 (or 0, now)")
        start = "0-0" if since in ("0", "0-0") else since
        newest = await self.store.eventlog.last_id() if start in (None, "$", "now") or once else ""
        # checked and taken with no await between: concurrent requests cannot both take the last slot
        if self.active >= self.max_streams:
            raise TooManyStreams(
                f"this API process serves {self.max_streams} event streams already (events_max_streams); "
                "retry shortly or follow through another process"
            )
        self.active += 1
        released = [False]

        def release() -> None:
            if not released[0]:
                released[0] = True
                self.active -= 1

        end = _id_key(newest) if once else None
        start = newest if start in (None, "$", "now") else start
        stream = self._follow(start, wanted, release, end)
        # a client gone before the first chunk leaves the generator unstarted (its finally never runs):
        # the slot is given back when the generator is collected instead
        weakref.finalize(stream, release)
        return stream

    async def _follow(
        self, after: str, wanted: EventFilter, release: Callable[[], None], end: tuple[int, int] | None
    ) -> AsyncIterator[str]:
        follower = EventFollower(self.store.client)
        try:
            yield f"retry: {RETRY_MS}\n: following events after {after}\n\n"
            quiet_since = time.monotonic()
            while True:
                try:
                    events = await follower.read(after, self.keepalive_seconds)
                except StoreError as exc:
                    # no JSON error once the stream has begun: say why, end it; the client resumes
                    log.warning("event stream ended: %s", exc)
                    yield f"event: error\ndata: {json.dumps({'ok': False, 'error': str(exc)})}\n\n"
                    return
                sent = False
                for event in events:
                    if end is not None and _id_key(event.id) > end:
                        return
                    after = event.id
                    if wanted.matches(event):
                        sent = True
                        yield sse(event)
                if end is not None and (not events or _id_key(after) >= end):
                    return
                if sent:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= self.keepalive_seconds:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
        finally:
            release()
            await follower.close()
