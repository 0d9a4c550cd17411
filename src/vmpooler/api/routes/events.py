"""``GET /api/v3/events`` (the event stream as server-sent events) and ``GET /api/v3/audit`` (the audit trail)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from vmpooler.api.deps import Auth
from vmpooler.api.responses import ok
from vmpooler.api.schemas import errors
from vmpooler.api.services.event_stream import EventFilter, EventStreams
from vmpooler.errors import BadRequest, Forbidden
from vmpooler.store.redis import Store

MAX_AUDIT_LIMIT = 1000


def router() -> APIRouter:
    routes = APIRouter(tags=["events"], responses=errors(400, 401, 503))

    @routes.get("/events", response_class=StreamingResponse)
    async def events(request: Request, auth: Auth) -> Response:
        """Server-sent events, each `id:` its stream id and `data:` the event as JSON; resume with the
        Last-Event-ID header or `?since=<id>` (`0`: everything kept); filters `pool`, `vm`, `owner`, `type`;
        `?once=1` ends the stream after the events that exist when it starts."""
        if auth.enabled:
            await auth.token(request, required=True)
        streams: EventStreams = request.app.state.event_streams
        since = request.headers.get("last-event-id") or request.query_params.get("since")
        once = request.query_params.get("once", "") in ("1", "true")
        body = await streams.start(since, EventFilter.from_query(request.query_params), once)
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            # no proxy buffering (nginx) and no caching: each event is sent the moment it is read
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @routes.get("/audit", responses=errors(403))
    async def audit(request: Request, auth: Auth) -> Response:
        """Who did what, newest first: filters `user`, `vm`, `since`, `until` (epoch seconds or ISO 8601),
        `limit` (at most 1000). With `:auth:`, an admin's token only."""
        if auth.enabled:
            caller = await auth.token(request, required=True)
            if caller is None or not caller.admin:
                raise Forbidden("the audit trail is for admins (see :auth: admins)")
        q = request.query_params
        store: Store = request.app.state.store
        found = await store.audit_trail.query(
            user=q.get("user") or None,
            vm=q.get("vm") or None,
            since=_when(q.get("since"), "since"),
            until=_when(q.get("until"), "until"),
            limit=_limit(q.get("limit")),
        )
        return ok(entries=[entry.as_dict() for entry in found])

    return routes


def _when(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"?{name}= must be epoch seconds or an ISO 8601 time, got {value[:40]!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _limit(value: str | None) -> int:
    if not value:
        return 100
    if not value.isdigit() or not 1 <= int(value) <= MAX_AUDIT_LIMIT:
        raise BadRequest(f"?limit= must be a whole number from 1 to {MAX_AUDIT_LIMIT}, got {value[:20]!r}")
    return int(value)
