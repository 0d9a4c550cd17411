"""The checks every request passes before routing: its Host, whether a browser sent it from another site,
its body's type, and its body's size (refused on Content-Length at once, counted while chunks arrive).

Cross-site requests. A browser sends a "simple" POST (a form, or ``fetch`` of ``text/plain``) to any
site without asking first, with the user's network position: a page on the internet could check out
or return VMs on an intranet vmpooler. So a request that changes something (any method but GET, HEAD
and OPTIONS) is refused with 403 when the browser says it came from another site
(``Sec-Fetch-Site: cross-site`` or ``same-site``) or, from a browser too old to say, when its
``Origin`` names another host than its ``Host``. Clients that are not browsers send neither header.

Body types. A body must be JSON (``application/json`` or ``*/*+json``), else 415. ``curl -d`` (the
original README's examples) and Ruby's Faraday send ``application/x-www-form-urlencoded``, and some
clients send no type at all: those two are read as JSON as the original did, but only from a request
that carries no ``Origin`` (so never from a browser page, which always sends one with a POST).

Host names. With ``:config: allowed_hosts`` set, a request whose ``Host`` is not in it gets 400: a
DNS-rebinding page reaches the API under its own host name, which is not in the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmpooler.api.responses import error

__all__ = ["RequestGuard", "host_allowed"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: what ``curl -d``, Faraday and clients that name no type send: read as JSON, but not from a browser page
LEGACY_TYPES = frozenset({"", "application/x-www-form-urlencoded"})


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _host_name(host: str) -> str:
    """``example.com`` of ``Example.COM:4567``; ``::1`` of ``[::1]:4567``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether ``host`` (a Host header) is one of ``allowed``; ``.example.com`` allows it and every
    name under it, ``*`` allows any host."""
    name = _host_name(host)
    for entry in (a.strip().lower() for a in allowed):
        if entry in ("*", name) or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry))):
            return True
    return False


def cross_site(headers: Headers) -> str | None:
    """Why a browser's request came from another site, or None when it did not (or no browser sent it)."""
    fetch_site = headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return f"the browser marked it {fetch_site}"
    if fetch_site in ("same-origin", "none"):
        return None
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin.strip())
    if not parts.netloc or parts.netloc.lower() != headers.get("host", "").strip().lower():
        # a default port is left out of both Origin and Host by browsers, so netlocs compare as they are
        return f"it comes from the page at {origin[:100]!r}"
    return None


class RequestGuard:
    """Pure ASGI: refusals answer before the app (and before a byte of the body is read past the limit)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout: float = 10.0,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.allowed_hosts = list(allowed_hosts) if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method: str = scope["method"]
        if self.allowed_hosts is not None and not host_allowed(headers.get("host", ""), self.allowed_hosts):
            await self._refuse(scope, receive, send, 400, "this server does not answer to that Host name; use its own")
            return
        if method not in SAFE_METHODS and (why := cross_site(headers)) is not None:
            await self._refuse(
                scope, receive, send, 403, f"cross-site request refused ({why}); call the API from its own origin"
            )
            return
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is not None and length.strip() not in ("", "0"):
            if not (length.strip().isascii() and length.strip().isdigit()):
                await self._refuse(scope, receive, send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_body_bytes:
                await self._refuse(scope, receive, send, 413, self._too_large())
                return
        elif not chunked:
            await self.app(scope, receive, send)
            return
        media_type = _media_type(headers.get("content-type", ""))
        if method not in SAFE_METHODS and not (
            _is_json(media_type) or (media_type in LEGACY_TYPES and "origin" not in headers)
        ):
            await self._refuse(
                scope, receive, send, 415, "send the body as JSON with the header Content-Type: application/json"
            )
            return
        try:
            # a body trickled in a byte at a time must not hold the connection either
            async with asyncio.timeout(self.body_timeout):
                body = await self._read_body(receive)
        except TimeoutError:
            await self._refuse(
                scope, receive, send, 408, f"the body took longer than {self.body_timeout:g} s to arrive"
            )
            return
        if body is None:
            await self._refuse(scope, receive, send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_body_bytes // 1024} KiB; send less"

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once more than the limit has arrived (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # the client went away; the app sees an empty remainder
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        # the connection closes after the answer: an unread body is never drained
        reply = error(status, message, headers={"Connection": "close"})
        await reply(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
