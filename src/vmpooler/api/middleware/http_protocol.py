"""uvicorn's httptools HTTP/1.1 protocol with bounds on the request head: over one, 431 and the connection
closes; a head not complete within the header timeout, 408 and the connection closes.

httptools (and uvicorn around it) sets no limit on the request line and headers: a client can send
megabytes of headers and every byte is buffered and handed to the app (measured: a 100 KB header,
1,000 headers and 1,000 1 KB headers all answered 200). Here the bytes received while a request's head
is still being read are counted, and the parser is fed no more than the limit allows, so the server
never holds much more than ``MAX_HEAD_BYTES`` of one head (nginx's default: four 8 KB buffers; twice h11's);
and a request may have at most ``MAX_HEADERS`` header lines (Apache's ``LimitRequestFields``).

uvicorn has no timeout for reading a head either: its keep-alive timer stops at a connection's first
byte, and a fresh connection that sends nothing has no timer at all, so 300 clients sending their
headers a byte at a time held 300 connections for as long as they liked. Here a timer runs from a
connection's start, and from the first byte of each later head, until the head is complete.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from vmpooler.config import GlobalSettings

__all__ = ["MAX_HEAD_BYTES", "BoundedHttpToolsProtocol", "server_options"]

#: the request line and all header lines of one request, in bytes
MAX_HEAD_BYTES = 32 * 1024
#: header lines in one request
MAX_HEADERS = 100


class _TooManyHeaders(Exception):
    """Raised in a parser callback: httptools turns it into a parser error, which stops the request."""


def server_options(config: GlobalSettings) -> dict[str, Any]:
    """The ``uvicorn.Config`` options that bound what clients may hold: this protocol with the
    configured header timeout, the idle keep-alive timeout and the concurrency limit."""
    bounds = {"head_timeout": config.api_header_timeout, "max_concurrency": config.api_max_concurrency}
    return {
        "http": type("HttpProtocol", (BoundedHttpToolsProtocol,), bounds),
        "timeout_keep_alive": config.api_keepalive_timeout,
    }


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    """What a request beyond the concurrency limit gets (uvicorn's own limit answers in plain text)."""
    body = orjson.dumps({"ok": False, "error": "the server is at its concurrency limit; retry in a moment"})
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Pass as ``uvicorn.Config(http=...)``, best through ``server_options``."""

    #: seconds from a connection's start (or a later head's first byte) to the end of the head
    head_timeout: ClassVar[float] = 10.0
    #: connections (this one included) and requests in progress above which a request gets 503
    max_concurrency: ClassVar[int | None] = None
    _head_timer: asyncio.TimerHandle | None = None
    _reading_head = True
    _head_bytes = 0
    _header_count = 0
    _messages = 0  # requests completed on this connection
    _refusal = ""  # why the head is refused, once it is

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            self._refuse(408, f"request line and headers took longer than {self.head_timeout:g} s")

    def data_received(self, data: bytes) -> None:
        if self._reading_head and self._head_timer is None:
            self._arm_head_timer()
        view = memoryview(data)
        while view and self._reading_head and not self.transport.is_closing():
            # feed at most one byte past the budget: enough to know the head is too large
            piece = view[: MAX_HEAD_BYTES - self._head_bytes + 1]
            view = view[len(piece) :]
            messages = self._messages
            super().data_received(bytes(piece))
            # after a request ended inside the piece, its tail (the next head's start) goes uncounted:
            # at most one piece, so one head is never held past twice the limit
            if self._reading_head and messages == self._messages:
                self._head_bytes += len(piece)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse(431, f"request line and headers are larger than {MAX_HEAD_BYTES // 1024} KiB")
                    return
        if view and not self.transport.is_closing():
            super().data_received(bytes(view))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refusal = f"more than {MAX_HEADERS} header lines"
            raise _TooManyHeaders
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers 400 to every parser error, ours included: that one deserves its 431
        if self._refusal:
            self._refuse(431, self._refusal)
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm_head_timer()
        limit = self.max_concurrency
        if limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit):
            self.logger.warning("503 to %s: over the concurrency limit of %d", self.client, limit)
            # uvicorn starts the request with ``self.app``: this one request gets the JSON refusal
            app, self.app = self.app, _busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        # what follows on a kept-alive connection is the next request's head
        self._reading_head, self._head_bytes, self._header_count = True, 0, 0
        self._messages += 1
        super().on_message_complete()

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with the API's JSON error shape, and close the connection."""
        self.logger.warning("%d to %s: %s", status, self.client, reason)
        advice = "send less" if status == 431 else "send the whole head at once"
        body = orjson.dumps({"ok": False, "error": f"{reason}; {advice}"})
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
