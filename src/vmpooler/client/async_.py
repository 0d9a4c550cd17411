"""The asyncio client: ``await AsyncClient(url, token).checkout("debian")``; see :mod:`vmpooler.client.core`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from vmpooler.client import core
from vmpooler.client.core import VM, PoolSpec, RequestStatus
from vmpooler.errors import NotFound

T = TypeVar("T")


class AsyncClient:
    """The asyncio twin of :class:`~vmpooler.client.sync.Client`: same methods, awaited."""

    def __init__(
        self,
        url: str = core.DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=core.base_url(url), headers=core.headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: core.Call[T]) -> T:
        """Send one request described by :mod:`vmpooler.client.core` and parse its reply."""
        with core.transport_errors(self.url):
            response = await self._http.send(call.request(self._http), auth=call.basic_auth)
        return core.read_reply(call, response)

    @contextlib.asynccontextmanager
    async def vm(self, pool: str) -> AsyncIterator[VM]:
        """Check out one VM of ``pool`` for the ``async with`` block; it is returned however the block ends."""
        (checked_out,) = await self.checkout(pool)
        try:
            yield checked_out
        finally:
            with contextlib.suppress(NotFound):  # already returned inside the block
                await self.delete(checked_out.fqdn)

    async def pools(self) -> list[str]:
        return await self.send(core.pools())

    async def checkout(self, spec: PoolSpec, wait: float = 0.0) -> list[VM]:
        """Check out VMs, all or nothing: ``{"debian": 2}``, ``"debian"`` or ``["debian", "centos"]``; with
        ``wait`` (seconds, up to 600) the server holds the request until its turn instead of a 503."""
        return await self.send(core.checkout(spec, wait))

    async def queue(self, pool: str) -> dict[str, Any]:
        """The pool's waiting checkouts, and this token's ``position`` among them (None: not waiting)."""
        return await self.send(core.queue(pool))

    async def query(self, host: str) -> dict[str, Any]:
        return await self.send(core.query(host))

    async def modify(self, host: str, lifetime: int | None = None, tags: Mapping[str, str] | None = None) -> None:
        await self.send(core.modify(host, lifetime, tags))

    async def delete(self, host: str) -> None:
        await self.send(core.delete(host))

    async def snapshot(self, host: str) -> str:
        return await self.send(core.snapshot(host))

    async def revert(self, host: str, snapshot: str) -> None:
        await self.send(core.revert(host, snapshot))

    async def add_disk(self, host: str, gb: int) -> str:
        return await self.send(core.add_disk(host, gb))

    async def status(self, view: Sequence[str] | None = None) -> dict[str, Any]:
        return await self.send(core.status(view))

    async def summary(self, from_: str | None = None, to: str | None = None) -> dict[str, Any]:
        return await self.send(core.summary(from_, to))

    async def create_token(self, user: str, password: str) -> str:
        return await self.send(core.create_token(user, password))

    async def token_info(self, token: str | None = None) -> dict[str, Any]:
        return await self.send(core.token_info(token or self._own_token()))

    async def list_tokens(self, user: str, password: str) -> dict[str, dict[str, Any]]:
        return await self.send(core.list_tokens(user, password))

    async def delete_token(self, token: str, user: str, password: str) -> None:
        await self.send(core.delete_token(token, user, password))

    async def request(self, spec: PoolSpec, request_id: str | None = None) -> str:
        """Ask for VMs on demand; returns the request id to poll with :meth:`request_status`."""
        return await self.send(core.request(spec, request_id))

    async def request_status(self, request_id: str) -> RequestStatus:
        return await self.send(core.request_status(request_id))

    async def cancel_request(self, request_id: str) -> None:
        await self.send(core.cancel_request(request_id))

    def _own_token(self) -> str:
        if not self.token:
            raise ValueError("no token given and the client has none")
        return self.token


__all__ = ["AsyncClient"]
