"""Rate limiting at the API's edge: a pure-ASGI middleware counting requests in Redis before routing.

Configuration, in the original's layout (every key optional; periods in seconds, limits ≥ 1)::

    :config:
      rate_limiting_enabled: true               # turns the limiter on, as the original does...
    :rate_limits:
      enabled: true                             # ...and so does this; either one is enough
      global_per_ip: {limit: 100, period: 60}   # every request, per client address
      authenticated: {limit: 500, period: 60}   # requests sending X-AUTH-TOKEN, per token (by its hash)
      vm_creation: {limit: 20, period: 60}      # checkouts, POST [/api/vN]/vm[/<pools>], per address
      vm_deletion: {limit: 50, period: 60}      # returns, DELETE [/api/vN]/vm/<hostname>, per address
      token_creation: {limit: 10, period: 60}   # ours: every password check, per address (see below)
      trusted_proxies: [10.0.0.5, 10.1.0.0/16]  # peers whose X-Forwarded-For names the client

A limit given without ``period`` keeps 60 s. A bad value or an unknown key is a ConfigError at
start-up naming it (``rate_limits.vm_creation.limit: ...``), whether or not the limiter is on
(the section's models are in ``vmpooler.config.rate_limits``).

What counts, and where this departs from the original:

* Every request counts against ``global_per_ip``; one sending a token also against
  ``authenticated``; a checkout or a return also against its route class, per address. The
  original counted a request under one of these only (a token replaced the address).
* A request is refused when any of its limits is used up, and then counts against none of them.
* ``token_creation`` counts every request that may check a password: the token routes that take
  basic auth (``POST /token``, ``GET /token``, ``DELETE /token/<t>``) and any request that sends an
  ``Authorization`` header, so no route is a free way to guess passwords.
* Snapshot and disk requests (POST /vm/<host>/...) are not checkouts; the original's substring
  match counted them as ``vm_creation``.
* Windows are fixed and shared by every API process on the Redis (see vmpooler.store.ratelimit).
* Never limited: ``/healthcheck``, ``/prometheus``, ``/dashboard/...``, ``/static/...`` and ``/api/static/...``.
* When Redis cannot be reached requests go through (the route then answers 503); logged once
  per outage.
* The client address is the socket peer; X-Forwarded-For is read only when the peer is a trusted
  proxy, walking it from the right to the first address that is not one.

Replies carry ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time
the window ends, as the original) of the tightest limit counted. Over a limit the reply is 429 with
``Retry-After`` and ``{"ok": false, "error": "Rate limit exceeded: ...", "limit", "period",
"retry_after"}``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vmpooler.api.auth import TOKEN_HEADER
from vmpooler.api.responses import error
from vmpooler.auth.tokens import token_id
from vmpooler.config.rate_limits import Limit, RateLimits
from vmpooler.errors import StoreError
from vmpooler.store.ratelimit import Quota, RateLimitStore, Usage, Verdict

log = logging.getLogger("vmpooler.api")

EXEMPT_PATHS = ("/healthcheck", "/prometheus", "/dashboard", "/static", "/api/static")

# under every mount (app.MOUNTS); a checkout names its pools in one segment (deb+deb+cent), while
# snapshot and disk routes (/vm/<host>/snapshot...) have more segments and are not checkouts
_CHECKOUT = re.compile(r"(?:/api/v\d+)?/vm(?:/[^/]+)?/?")
_RETURN = re.compile(r"(?:/api/v\d+)?/vm/[^/]+/?")
# each attempt checks a password against the directory: the budget that stops guessing
_TOKEN = re.compile(r"(?:/api/v\d+)?/token/?")
_ONE_TOKEN = re.compile(r"(?:/api/v\d+)?/token/[^/]+/?")

#: what each limit counts, for the 429 message
_COUNTS = {
    "global_per_ip": "requests from your address",
    "authenticated": "requests with your token",
    "vm_creation": "VM checkouts from your address",
    "vm_deletion": "VM returns from your address",
    "token_creation": "token requests (password checks) from your address",
}


class RateLimitMiddleware:
    """Counts each HTTP request against its limits before the route runs; 429 when one is used up."""

    def __init__(
        self, app: ASGIApp, *, limits: RateLimits, store: RateLimitStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.limits = limits
        self.store = store
        self.clock = clock
        self._store_down = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self.store.hit(self.quotas(scope))
        except StoreError as exc:
            if not self._store_down:
                log.warning("rate limiter: letting requests through unlimited while Redis fails: %s", exc)
                self._store_down = True
            await self.app(scope, receive, send)
            return
        if self._store_down:
            log.info("rate limiter: Redis is back; limiting again")
            self._store_down = False
        if not verdict.allowed:
            await self._refusal(verdict)(scope, receive, send)
            return
        headers = self._headers(min(verdict.usage, key=lambda u: (u.remaining, u.quota.limit)))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def quotas(self, scope: Scope) -> list[Quota]:
        """The limits this request counts against."""
        address = f"ip:{client_address(scope, self.limits.trusted_proxies)}"
        quotas = [_quota("global_per_ip", address, self.limits.global_per_ip)]
        token = Headers(scope=scope).get(TOKEN_HEADER, "").strip()
        if token:
            quotas.append(_quota("authenticated", f"token:{token_id(token)}", self.limits.authenticated))
        method, path = scope["method"], scope["path"]
        if method == "POST" and _CHECKOUT.fullmatch(path):
            quotas.append(_quota("vm_creation", address, self.limits.vm_creation))
        elif method == "DELETE" and _RETURN.fullmatch(path):
            quotas.append(_quota("vm_deletion", address, self.limits.vm_deletion))
        if _checks_password(scope, method, path):
            quotas.append(_quota("token_creation", address, self.limits.token_creation))
        return quotas

    def _headers(self, usage: Usage) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(usage.quota.limit),
            "X-RateLimit-Remaining": str(usage.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.clock() + usage.reset_in)),
        }

    def _refusal(self, verdict: Verdict) -> Response:
        # the client must wait for the last of its used-up limits to reset
        usage = max((u for u in verdict.usage if u.used_up), key=lambda u: u.reset_in)
        quota, wait = usage.quota, max(1, math.ceil(usage.reset_in))
        log.debug("rate limit %s exceeded by %s", quota.kind, quota.subject)
        return error(
            429,
            f"Rate limit exceeded: at most {quota.limit} {_COUNTS.get(quota.kind, 'requests')} per {quota.period} s; "
            f"retry after {wait} s",
            headers={**self._headers(usage), "Retry-After": str(wait)},
            limit=quota.limit,
            period=quota.period,
            retry_after=wait,
        )


def _quota(kind: str, subject: str, limit: Limit) -> Quota:
    return Quota(kind, subject, limit.limit, limit.period)


def _checks_password(scope: Scope, method: str, path: str) -> bool:
    if method in ("GET", "POST") and _TOKEN.fullmatch(path):
        return True
    if method == "DELETE" and _ONE_TOKEN.fullmatch(path):
        return True
    return "authorization" in Headers(scope=scope)


def _exempt(path: str) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in EXEMPT_PATHS)


def client_address(scope: Scope, trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The socket peer, or when that is a trusted proxy, the nearest untrusted hop of X-Forwarded-For."""
    client = scope.get("client")
    address = str(client[0]) if client else "unknown"
    if not trusted_proxies or not _trusted(address, trusted_proxies):
        return address
    hops = [hop.strip() for value in Headers(scope=scope).getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        address = hop
        if not _trusted(hop, trusted_proxies):
            break
    return address


def _trusted(address: str, proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)
