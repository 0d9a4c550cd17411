"""Client load for the chaos tests: workers that check VMs out and return them, keeping every reply."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

#: a DELETE whose outcome is unknown (no reply, 503) is retried this many times before giving up
RETURN_ATTEMPTS = 40


@dataclass(frozen=True, slots=True)
class Reply:
    """One request and what came back; ``status`` None means no HTTP reply (refused, reset, timed out)."""

    method: str
    url: str
    started: float  # time.monotonic()
    seconds: float
    status: int | None
    body: Any = None
    error: str = ""

    @property
    def ended(self) -> float:
        return self.started + self.seconds


async def send(client: httpx.AsyncClient, method: str, url: str, content: bytes | None = None) -> Reply:
    started = time.monotonic()
    try:
        response = await client.request(method, url, content=content)
    except httpx.HTTPError as exc:
        return Reply(method, url, started, time.monotonic() - started, None, error=f"{type(exc).__name__}: {exc}")
    seconds = time.monotonic() - started
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Reply(method, url, started, seconds, response.status_code, body)


def pool_was_empty(reply: Reply) -> bool:
    """The documented 503 of a checkout that found too few ready VMs (nothing was checked out)."""
    return (
        reply.status == 503
        and isinstance(reply.body, dict)
        and reply.body.get("ok") is False
        and "not enough ready VMs" in str(reply.body.get("error"))
    )


def unexpected_errors(replies: Sequence[Reply]) -> list[Reply]:
    """Replies that are a failure of the service: a 5xx other than an empty pool's 503, or no reply."""
    return [r for r in replies if r.status is None or (r.status >= 500 and not pool_was_empty(r))]


@dataclass
class Traffic:
    """``workers`` coroutines, on a thread of their own, each looping: check a VM out of one of ``pools``
    through one of ``urls`` (spread over both), hold it ``hold`` seconds, return it. Every
    ``keep_every``-th VM a worker gets is kept (never returned), so a test can look for it later.
    """

    urls: Sequence[str]
    pools: Sequence[str]
    workers: int = 4
    keep_every: int = 0
    hold: float = 0.0
    pause: float = 0.05  # after a refused checkout, so an empty pool is not hammered
    timeout: float = 30.0
    keepalive: bool = True
    replies: list[Reply] = field(default_factory=list)
    #: every hostname a successful checkout reply named, in order (duplicates kept: they are the bug)
    handed_out: list[str] = field(default_factory=list)
    kept: set[str] = field(default_factory=set)
    returned: set[str] = field(default_factory=set)
    #: checked out, meant to be returned, but no return could be confirmed
    unreturned: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 2 + RETURN_ATTEMPTS)
            assert not self._thread.is_alive(), "client workers did not stop"

    def checkouts(self) -> list[Reply]:
        return [r for r in self.replies if r.method == "POST" and r.status == 200]

    def doubles(self) -> dict[str, int]:
        """Hostnames named by more than one successful checkout reply."""
        return {host: n for host, n in Counter(self.handed_out).items() if n > 1}

    async def _main(self) -> None:
        limits = httpx.Limits(
            max_connections=self.workers, max_keepalive_connections=self.workers if self.keepalive else 0
        )
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, n) for n in range(self.workers)))

    async def _worker(self, client: httpx.AsyncClient, number: int) -> None:
        turn = number
        got = 0
        while not self._stop.is_set():
            # every pool through every API process in turn
            url = self.urls[turn % len(self.urls)]
            pool = self.pools[turn // len(self.urls) % len(self.pools)]
            turn += 1
            reply = await send(client, "POST", f"{url}/api/v3/vm/{pool}")
            self.replies.append(reply)
            if reply.status != 200:
                await asyncio.sleep(self.pause)
                continue
            host = reply.body[pool]["hostname"]
            self.handed_out.append(host)
            got += 1
            if self.keep_every and got % self.keep_every == 0:
                self.kept.add(host)
                continue
            await asyncio.sleep(self.hold)
            await self._give_back(client, url, host)

    async def _give_back(self, client: httpx.AsyncClient, url: str, host: str) -> None:
        unsure = False
        for _ in range(RETURN_ATTEMPTS):
            reply = await send(client, "DELETE", f"{url}/api/v3/vm/{host}")
            self.replies.append(reply)
            # a 404 after an attempt whose outcome was unknown: that attempt did return it
            if reply.status == 200 or (reply.status == 404 and unsure):
                self.returned.add(host)
                return
            if reply.status is not None and reply.status != 503:
                break
            unsure = True
            await asyncio.sleep(0.25)
        self.unreturned.add(host)


@dataclass
class Poller:
    """GETs ``url`` every ``period`` seconds on a thread of its own, keeping every reply."""

    url: str
    period: float = 0.5
    timeout: float = 30.0
    replies: list[Reply] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="poller", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + self.period + 5)

    async def _main(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while not self._stop.is_set():
                self.replies.append(await send(client, "GET", self.url))
                await asyncio.sleep(self.period)
