"""Delivery workers: per hook, read its consumer group, POST each matching event with retries, at least once.

Each hook has its own worker, HTTP client and in-flight bound (``concurrency``): a receiver that hangs
or answers 500 fills only its own slots, and the worker then reads nothing more for it, so other hooks,
and the API's checkouts, never wait on it. Several managers each run a worker per hook under their own
consumer name; the group hands each event to one of them, and the entries a dead worker held are
claimed by a live one once they have been idle ``claim_idle_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from vmpooler.config.webhooks import WebhookSettings, secret_key
from vmpooler.errors import StoreError
from vmpooler.store.connection import Redis
from vmpooler.store.webhooks import StreamEntry, WebhookStore, event_body
from vmpooler.webhooks.delivery import backoff, post_event

__all__ = ["HookWorker", "WebhookDispatcher", "consumer_name"]

log = logging.getLogger("vmpooler.webhooks")

#: the first retry waits about this long; each further one twice as long (see delivery.backoff)
RETRY_BASE_S = 1.0
#: an entry pending this long with no word from its worker is taken over by another
CLAIM_IDLE_S = 30.0
#: consumers (workers of earlier processes) holding nothing are forgotten after this long
FORGET_IDLE_S = 24 * 3600.0
#: on stop, deliveries in flight get this long to finish before they are cut short
STOP_GRACE_S = 2.0
#: how long one read waits for a new event (under the Redis gate's stall threshold: store/gate.py)
BLOCK_MS = 250


def consumer_name() -> str:
    """This process's name in the consumer groups: readable in XINFO, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class HookWorker:
    """Delivers one hook's events; ``poll_once`` is one iteration (what ``run`` repeats)."""

    def __init__(
        self,
        hook: WebhookSettings,
        store: WebhookStore,
        consumer: str,
        *,
        claim_idle_s: float = CLAIM_IDLE_S,
        retry_base_s: float = RETRY_BASE_S,
        block_ms: int = BLOCK_MS,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hook = hook
        self.store = store
        self.consumer = consumer
        self.claim_idle_s = claim_idle_s
        self.retry_base_s = retry_base_s
        self.block_ms = block_ms
        self.clock = clock
        self.key = secret_key(hook.secret_text(env))  # ConfigError at start-up when secret_env is unset
        self.http = httpx.AsyncClient(
            timeout=hook.timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=hook.concurrency, max_keepalive_connections=hook.concurrency),
        )
        # retry jitter, not a secret
        self.rng = random.Random()  # nosec B311
        #: stream entry id (or ``redeliver:<id>``) -> its delivery task
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.slot_freed = asyncio.Event()
        self.last_claim = float("-inf")

    @property
    def name(self) -> str:
        return self.hook.name

    async def run(self, stop: asyncio.Event) -> None:
        keeper = asyncio.create_task(self._keep_claims(stop), name=f"webhook-{self.name}-keeper")
        try:
            await self._retrying(self.store.ensure_group, stop)
            while not stop.is_set():
                try:
                    await self.poll_once()
                except StoreError as exc:
                    log.warning("webhook %s: cannot read events (will retry): %s", self.name, exc)
                    await _sleep(1.0, stop)
                    # the stream (and with it the group) may be gone: a FLUSHALL, a restore from before it
                    await self._retrying(self.store.ensure_group, stop)
        finally:
            keeper.cancel()
            # a delivery about to finish may (its answer is due); one still retrying is cut short and stays
            # pending in the group: another worker sends it once it is idle long enough (at least once)
            if self.in_flight:
                await asyncio.wait(list(self.in_flight.values()), timeout=STOP_GRACE_S)
            for task in self.in_flight.values():
                task.cancel()
            await asyncio.gather(keeper, *self.in_flight.values(), return_exceptions=True)
            await self.http.aclose()

    async def poll_once(self) -> int:
        """Start deliveries for what is waiting (redeliveries, entries of dead workers, new events) up to
        the free slots; waits briefly when there is nothing. Returns how many deliveries it started."""
        free = self.hook.concurrency - len(self.in_flight)
        if free <= 0:
            self.slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.slot_freed.wait(), 1.0)
            return 0
        started = 0
        for event in await self.store.take_redeliveries(self.name, free):
            started += self._start(f"redeliver:{event['id']}", event)
        entries: list[StreamEntry] = []
        if free - started > 0 and time.monotonic() - self.last_claim >= self.claim_idle_s / 3:
            self.last_claim = time.monotonic()
            claim_ms = int(self.claim_idle_s * 1000)
            entries += await self.store.claim_stale(self.name, self.consumer, claim_ms, free - started)
        if (wanted := free - started - len(entries)) > 0:
            block = None if started or entries else self.block_ms
            entries += await self.store.read_new(self.name, self.consumer, wanted, block)
        skipped: list[str] = []
        for entry_id, fields in entries:
            if self.hook.matches(fields.get("type", ""), fields.get("pool", "")):
                started += self._start(entry_id, event_body(entry_id, fields))
            else:
                skipped.append(entry_id)
        await self.store.ack(self.name, skipped)
        return started

    def _start(self, slot: str, event: dict[str, Any]) -> int:
        if slot in self.in_flight:  # claimed back while still ours: it is being delivered already
            return 0
        self.in_flight[slot] = asyncio.create_task(self._deliver(slot, event), name=f"webhook-{self.name}-{slot}")
        return 1

    async def _deliver(self, slot: str, event: dict[str, Any]) -> None:
        try:
            for attempt in range(1, self.hook.max_attempts + 1):
                result = await post_event(self.http, self.hook.url, self.key, event, self.hook.timeout_s)
                entry = {
                    "id": event["id"],
                    "type": event["type"],
                    "attempt": attempt,
                    "ok": result.ok,
                    "status": result.status,
                    "error": result.error,
                    "ms": round(result.seconds * 1000, 1),
                    "at": self.clock(),
                }
                if result.ok:
                    await self.store.delivered(self.name, event["id"], entry)
                    return
                if attempt == self.hook.max_attempts:
                    log.warning(
                        "webhook %s: event %s dead after %d attempts: %s",
                        self.name,
                        event["id"],
                        attempt,
                        entry["error"],
                    )
                    await self.store.dead(self.name, event, result.error, entry)
                    return
                await self.store.attempt_failed(self.name, entry)
                await asyncio.sleep(backoff(attempt, self.retry_base_s, self.rng))
        except StoreError as exc:
            # left pending: once idle for claim_idle_s it is claimed (by this worker too) and sent again
            log.warning("webhook %s: event %s left for a retry, Redis failed: %s", self.name, event["id"], exc)
        finally:
            self.in_flight.pop(slot, None)
            self.slot_freed.set()

    async def _keep_claims(self, stop: asyncio.Event) -> None:
        """Tell the group, often enough, that the entries in flight are still ours (they may retry for minutes);
        now and then, forget the consumers of processes long gone."""
        last_forget = float("-inf")
        while not stop.is_set():
            await _sleep(self.claim_idle_s / 3, stop)
            ours = [slot for slot in self.in_flight if not slot.startswith("redeliver:")]
            try:
                await self.store.keep(self.name, self.consumer, ours)
                if time.monotonic() - last_forget >= 3600:
                    last_forget = time.monotonic()
                    await self.store.forget_idle_consumers(self.name, self.consumer, int(FORGET_IDLE_S * 1000))
            except StoreError as exc:
                log.warning("webhook %s: cannot renew claims: %s", self.name, exc)

    async def _retrying(self, step: Callable[[str], Awaitable[None]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await step(self.name)
                return
            except StoreError as exc:
                log.warning("webhook %s: waiting for Redis: %s", self.name, exc)
                await _sleep(1.0, stop)


class WebhookDispatcher:
    """Every configured hook's worker, in one process (the manager's)."""

    def __init__(
        self, hooks: Sequence[WebhookSettings], client: Redis, consumer: str | None = None, **options: Any
    ) -> None:
        store = WebhookStore(client)
        name = consumer or consumer_name()
        self.workers = [HookWorker(hook, store, name, **options) for hook in hooks]

    async def prepare(self) -> None:
        """Make every hook's consumer group now (events written from here on reach the hooks)."""
        for worker in self.workers:
            await worker.store.ensure_group(worker.name)

    async def run(self, stop: asyncio.Event) -> None:
        if self.workers:
            log.info("webhooks: delivering to %s", ", ".join(worker.name for worker in self.workers))
        await asyncio.gather(*(worker.run(stop) for worker in self.workers))


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
