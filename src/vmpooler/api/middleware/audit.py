"""The audit trail's writer: a pure ASGI middleware recording every state-changing request and every refusal.

Pure ASGI, not BaseHTTPMiddleware: that wraps each request in a task and a stream, which costs checkout
throughput. The entry is written after the reply has gone out, by a writer task that takes every entry
queued meanwhile in one round trip, so no caller waits for it; a Redis that cannot take them loses those
entries (logged), never the request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmpooler.api.audit_notes import STATE_KEY
from vmpooler.api.auth import TOKEN_HEADER
from vmpooler.api.middleware.observe import route_template
from vmpooler.api.middleware.ratelimit import client_address
from vmpooler.auth.tokens import token_id
from vmpooler.errors import StoreError
from vmpooler.store.audit_trail import AuditEntry, AuditTrail

log = logging.getLogger("vmpooler.api")

READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
#: a read is recorded only when refused: who tried what they may not
REFUSALS = frozenset({401, 403, 429})
#: the most audit entries waiting to be written; beyond it (Redis far behind) entries are dropped and counted
MAX_PENDING = 1000


def token_hint(token: str) -> str:
    """Who, without the secret: a prefix of the token's SHA-256 (the id its record is kept under)."""
    return f"sha256:{token_id(token)[:8]}"


def _claimed_user(headers: dict[bytes, bytes]) -> str:
    """The user name a basic-auth header claims (recorded on a refusal too: who tried)."""
    scheme, _, encoded = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")[0][:100]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _bearer(headers: dict[bytes, bytes]) -> str:
    """A token sent as ``Authorization: Bearer`` (an OIDC ID token, or ours)."""
    scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


class AuditRequests:
    def __init__(
        self,
        app: ASGIApp,
        trail: AuditTrail,
        trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
    ) -> None:
        self.app = app
        self.trail = trail
        self.trusted_proxies = trusted_proxies
        #: entries waiting for the writer task, which takes them all at once
        self._queued: list[AuditEntry] = []
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if scope["method"] not in READ_ONLY or status in REFUSALS:
                self._record(scope, status)

    def _record(self, scope: Scope, status: int) -> None:
        if len(self._queued) >= MAX_PENDING:
            self.dropped += 1
            return
        self._queued.append(self._entry(scope, status))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())

    def _entry(self, scope: Scope, status: int) -> AuditEntry:
        headers = dict(scope["headers"])
        noted: dict[str, str] = scope.get("state", {}).get(STATE_KEY, {})
        params: dict[str, Any] = scope.get("path_params", {})
        token = headers.get(TOKEN_HEADER.lower().encode(), b"").decode("latin-1").strip() or _bearer(headers)
        target = noted.get("target", "")
        if "token" in params:  # DELETE /token/<token>: the token acted on, never in clear
            target = token_hint(str(params["token"]))
        return AuditEntry(
            user=noted.get("user") or _claimed_user(headers),
            token=token_hint(token) if token else "",
            address=client_address(scope, self.trusted_proxies),
            method=scope["method"],
            route=route_template(scope),
            status=status,
            at=time.time(),
            vm=noted.get("vm") or str(params.get("hostname", "")),
            pool=noted.get("pool") or str(params.get("pool", params.get("spec", ""))),
            target=target,
        )

    async def _write_queued(self) -> None:
        """Write what is queued, in one round trip per batch: entries queued while a batch is on its way
        go in the next one (one task and one XADD round trip per checkout was a third of its Redis calls)."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self.trail.record_many(batch)
            except StoreError as exc:
                first = batch[0]
                log.warning(
                    "%d audit entries lost (from %s %s -> %d): %s", len(batch), first.method, first.route,
                    first.status, exc,
                )  # fmt: skip
