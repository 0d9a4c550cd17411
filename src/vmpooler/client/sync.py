"""The blocking client: ``Client(url, token).checkout("debian")``; see :mod:`vmpooler.client.core`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from vmpooler.client import core
from vmpooler.client.core import VM, PoolSpec, RequestStatus
from vmpooler.errors import NotFound

T = TypeVar("T")


class Client:
    """A vmpooler API client over httpx (``/api/v3``). Use it as a context manager, or ``close()`` it."""

    def __init__(
        self,
        url: str = core.DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self._http = httpx.Client(
            base_url=core.base_url(url), headers=core.headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: core.Call[T]) -> T:
        """Send one request described by :mod:`vmpooler.client.core` and parse its reply."""
        with core.transport_errors(self.url):
            response = self._http.send(call.request(self._http), auth=call.basic_auth)
        return core.read_reply(call, response)

    @contextlib.contextmanager
    def vm(self, pool: str) -> Iterator[VM]:
        """Check out one VM of ``pool`` for the ``with`` block; it is returned however the block ends."""
        (checked_out,) = self.checkout(pool)
        try:
            yield checked_out
        finally:
            with contextlib.suppress(NotFound):  # already returned inside the block
                self.delete(checked_out.fqdn)

    def pools(self) -> list[str]:
        return self.send(core.pools())

    def checkout(self, spec: PoolSpec, wait: float = 0.0) -> list[VM]:
        """Check out VMs, all or nothing: ``{"debian": 2}``, ``"debian"`` or ``["debian", "centos"]``; with
        ``wait`` (seconds, up to 600) the server holds the request until its turn instead of a 503."""
        return self.send(core.checkout(spec, wait))

    def queue(self, pool: str) -> dict[str, Any]:
        """The pool's waiting checkouts, and this token's ``position`` among them (None: not waiting)."""
        return self.send(core.queue(pool))

    def query(self, host: str) -> dict[str, Any]:
        return self.send(core.query(host))

    def modify(self, host: str, lifetime: int | None = None, tags: Mapping[str, str] | None = None) -> None:
        self.send(core.modify(host, lifetime, tags))

    def delete(self, host: str) -> None:
        self.send(core.delete(host))

    def snapshot(self, host: str) -> str:
        return self.send(core.snapshot(host))

    def revert(self, host: str, snapshot: str) -> None:
        self.send(core.revert(host, snapshot))

    def add_disk(self, host: str, gb: int) -> str:
        return self.send(core.add_disk(host, gb))

    def status(self, view: Sequence[str] | None = None) -> dict[str, Any]:
        return self.send(core.status(view))

    def summary(self, from_: str | None = None, to: str | None = None) -> dict[str, Any]:
        return self.send(core.summary(from_, to))

    def create_token(self, user: str, password: str) -> str:
        return self.send(core.create_token(user, password))

    def token_info(self, token: str | None = None) -> dict[str, Any]:
        return self.send(core.token_info(token or self._own_token()))

    def list_tokens(self, user: str, password: str) -> dict[str, dict[str, Any]]:
        return self.send(core.list_tokens(user, password))

    def delete_token(self, token: str, user: str, password: str) -> None:
        self.send(core.delete_token(token, user, password))

    def request(self, spec: PoolSpec, request_id: str | None = None) -> str:
        """Ask for VMs on demand; returns the request id to poll with :meth:`request_status`."""
        return self.send(core.request(spec, request_id))

    def request_status(self, request_id: str) -> RequestStatus:
        return self.send(core.request_status(request_id))

    def cancel_request(self, request_id: str) -> None:
        self.send(core.cancel_request(request_id))

    def _own_token(self) -> str:
        if not self.token:
            raise ValueError("no token given and the client has none")
        return self.token


__all__ = ["Client"]
