"""ASGI middleware that sees every request: a request id, timing, metrics by route, the request log."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmpooler.auth.tokens import hint
from vmpooler.logs import request_id
from vmpooler.metrics.base import Metrics

log = logging.getLogger("vmpooler.api.requests")

HEADER = b"x-request-id"

# GET and DELETE /token/<token> carry the secret in the path
_TOKEN_IN_PATH = re.compile(r"(/token/)([^/]+)")


class RequestIds:
    """Fresh request ids: 16 hex digits, a random per-process prefix and a counter. uuid4 asks the
    kernel for random bytes on every request (a syscall: 6 % of a checkout's CPU under load, py-spy);
    an id only has to tell requests apart in the logs, not be secret."""

    def __init__(self) -> None:
        self._reset()
        # a forked worker must not hand out its parent's ids
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(5)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFF:06x}"


def loggable_path(path: str) -> str:
    """``path`` fit for a log: a token in it cut to the hint that listing tokens shows."""
    return _TOKEN_IN_PATH.sub(lambda match: match[1] + hint(match[2]), path)


def route_template(scope: Scope) -> str:
    """``/api/v3/vm/{hostname}``: the matched route with its version prefix, or ``unmatched``.
    (Routes are declared once per version without the prefix, so it is taken from the path.)"""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "unmatched"
    path: str = scope["path"]
    if path.startswith("/api/v") and not template.startswith("/api/"):
        template = "/".join(path.split("/")[:3]) + template
    return str(template)


class ObserveRequests:
    """Gives each request an id (the caller's X-Request-Id, or a new one) that every log line of the
    request carries and the reply echoes; counts it by route template; logs it when ``request_logger``."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log_requests: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")[:64]
        rid = given if given.isprintable() and given else self.ids.next()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.http(scope["method"], route_template(scope), status, seconds)
            if self.log_requests:
                log.info(
                    "%s %s -> %d in %.1f ms", scope["method"], loggable_path(scope["path"]), status, seconds * 1000
                )
            request_id.reset(token)
