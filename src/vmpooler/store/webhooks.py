"""Webhook deliveries in Redis: one consumer group per hook on the event stream, its delivery log, dead letters.

Each hook reads ``EVENT_STREAM`` through a consumer group of its own, so a hook that hangs holds back
only its own entries. An entry stays pending (XPENDING) until its delivery succeeded or it went to the
dead letters; a worker keeps claiming the entries it is working on (XCLAIM to itself resets their idle
time), so XAUTOCLAIM by another worker takes only the entries of a worker that died: at least once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.scripts import load

__all__ = ["DEAD_CAP", "LOG_CAP", "StreamEntry", "WebhookStore", "event_body"]

#: a hook's delivery log keeps this many attempts, its dead letters this many events
LOG_CAP = 200
DEAD_CAP = 1000

StreamEntry = tuple[str, dict[str, str]]


def _entries(reply: Any) -> list[StreamEntry]:
    """XREADGROUP/XAUTOCLAIM entries; one whose data was trimmed from the stream has no fields (None)."""
    return [(str(entry_id), dict(fields or {})) for entry_id, fields in reply or []]


def event_body(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """What a webhook receives for a stream entry: ``{id, type, pool, vm, owner, at, data}``."""
    try:
        at: float | None = float(fields.get("at", ""))
    except ValueError:
        at = None
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError:
        data = {"unparsed": fields.get("data")}  # written by hand or by a bug: still delivered, as text
    return {
        "id": entry_id,
        "type": fields.get("type", ""),
        "pool": fields.get("pool", ""),
        "vm": fields.get("vm", ""),
        "owner": fields.get("owner", ""),
        "at": at,
        "data": data,
    }


class WebhookStore:
    def __init__(self, client: Redis, stream: str = keys.EVENT_STREAM) -> None:
        self.client = client
        self.stream = stream
        self._dead = load(client, "webhook_dead")

    async def ensure_group(self, hook: str) -> None:
        """The hook's consumer group, made at the stream's end the first time: a new hook gets new events."""
        async with translated():
            try:
                await self.client.xgroup_create(self.stream, keys.webhook_group(hook), id="$", mkstream=True)
            except redis_errors.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_new(self, hook: str, consumer: str, count: int, block_ms: int | None) -> list[StreamEntry]:
        """Up to ``count`` entries no consumer of the hook has had yet, waiting up to ``block_ms`` for one
        (None: not at all; never 0, which Redis reads as forever)."""
        async with translated():
            reply = await self.client.xreadgroup(
                keys.webhook_group(hook), consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        found: list[StreamEntry] = []
        for stream_reply in reply or []:
            found += _entries(stream_reply[1])
        return found

    async def claim_stale(self, hook: str, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Entries pending with some consumer for ``min_idle_ms`` or more (its worker died), now ``consumer``'s.
        Entries trimmed from the stream meanwhile are acknowledged: there is nothing left to deliver."""
        async with translated():
            reply = await self.client.xautoclaim(
                self.stream, keys.webhook_group(hook), consumer, min_idle_ms, start_id="0-0", count=count
            )
        entries = _entries(reply[1])
        deleted = reply[2] if len(reply) > 2 else []  # Redis 7 lists them apart; 6.2 gives them no fields
        gone = [entry_id for entry_id, fields in entries if not fields] + [str(i) for i in deleted]
        if gone:
            await self.ack(hook, gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    async def keep(self, hook: str, consumer: str, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of entries ``consumer`` is still working on, so no other worker claims them."""
        if not entry_ids:
            return
        async with translated():
            await self.client.xclaim(self.stream, keys.webhook_group(hook), consumer, 0, list(entry_ids), justid=True)

    async def forget_idle_consumers(self, hook: str, keep: str, idle_ms: int) -> int:
        """Remove the group's consumers that hold nothing and have been idle ``idle_ms`` (workers of processes
        long gone: each start is a new consumer). Holding nothing, none loses an entry; a live one that is
        removed is made again by its next read."""
        async with translated():
            consumers = await self.client.xinfo_consumers(self.stream, keys.webhook_group(hook))
            gone = [
                str(c["name"])
                for c in consumers
                if c["name"] != keep and int(c["pending"]) == 0 and int(c["idle"]) >= idle_ms
            ]
            for name in gone:
                await self.client.xgroup_delconsumer(self.stream, keys.webhook_group(hook), name)
        return len(gone)

    async def ack(self, hook: str, entry_ids: Sequence[str]) -> None:
        """Done with these entries (delivered, or not for this hook)."""
        if entry_ids:
            async with translated():
                await self.client.xack(self.stream, keys.webhook_group(hook), *entry_ids)

    async def delivered(self, hook: str, entry_id: str, log_entry: dict[str, Any]) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, keys.webhook_group(hook), entry_id)
            self._log(pipe, hook, log_entry)
            pipe.hincrby(keys.webhook_stats(hook), "delivered", 1)
            pipe.hset(keys.webhook_stats(hook), "last_delivered_at", str(log_entry["at"]))
            await pipe.execute()

    async def attempt_failed(self, hook: str, log_entry: dict[str, Any]) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            self._log(pipe, hook, log_entry)
            pipe.hincrby(keys.webhook_stats(hook), "failed_attempts", 1)
            pipe.hset(
                keys.webhook_stats(hook), mapping={"last_error": log_entry["error"], "last_error_at": log_entry["at"]}
            )
            await pipe.execute()

    async def dead(self, hook: str, event: dict[str, Any], error: str, log_entry: dict[str, Any]) -> None:
        """The event goes to the hook's dead letters and is acknowledged, in one step."""
        letter = json.dumps({"event": event, "error": error, "died_at": log_entry["at"]})
        async with translated():
            await self._dead(
                keys=[
                    self.stream,
                    keys.webhook_dead(hook),
                    keys.webhook_dead_order(hook),
                    keys.webhook_stats(hook),
                    keys.webhook_log(hook),
                ],
                args=[
                    keys.webhook_group(hook),
                    event["id"],
                    letter,
                    log_entry["at"],
                    DEAD_CAP,
                    json.dumps(log_entry),
                    LOG_CAP,
                ],
            )

    def _log(self, pipe: Any, hook: str, log_entry: dict[str, Any]) -> None:
        pipe.lpush(keys.webhook_log(hook), json.dumps(log_entry))
        pipe.ltrim(keys.webhook_log(hook), 0, LOG_CAP - 1)

    async def event(self, hook: str, entry_id: str) -> dict[str, Any] | None:
        """The event ``entry_id`` as a dead letter of the hook, else as still in the stream; None when neither."""
        async with translated():
            letter = await self.client.hget(keys.webhook_dead(hook), entry_id)
            if letter is not None:
                found: dict[str, Any] = json.loads(letter)["event"]
                return found
            try:
                reply = await self.client.xrange(self.stream, min=entry_id, max=entry_id, count=1)
            except redis_errors.ResponseError:  # not a stream id at all
                return None
        if not reply:
            return None
        found_id, fields = reply[0]
        return event_body(str(found_id), {str(k): str(v) for k, v in (fields or {}).items()})

    async def queue_redelivery(self, hook: str, event: dict[str, Any]) -> None:
        """Send ``event`` again; it leaves the dead letters (it goes back there if it fails again)."""
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.webhook_redeliver(hook), json.dumps(event))
            pipe.hdel(keys.webhook_dead(hook), event["id"])
            pipe.zrem(keys.webhook_dead_order(hook), event["id"])
            await pipe.execute()

    async def take_redeliveries(self, hook: str, count: int) -> list[dict[str, Any]]:
        async with translated():
            taken = await self.client.lpop(keys.webhook_redeliver(hook), count)
        items = taken if isinstance(taken, list) else []
        return [json.loads(item) for item in items]

    async def status(self, hook: str, recent: int = 50) -> dict[str, Any]:
        """Counters, pending count, recent attempts (newest first) and dead letters (newest first)."""
        async with translated():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.webhook_stats(hook))
                pipe.lrange(keys.webhook_log(hook), 0, recent - 1)
                pipe.zrevrange(keys.webhook_dead_order(hook), 0, DEAD_CAP - 1)
                pipe.llen(keys.webhook_redeliver(hook))
                stats, log, dead_ids, queued = await pipe.execute()
            letters = await self.client.hmget(keys.webhook_dead(hook), dead_ids) if dead_ids else []
            try:
                pending = (await self.client.xpending(self.stream, keys.webhook_group(hook)))["pending"]
            except redis_errors.ResponseError:  # no group yet: no delivery worker has started
                pending = 0
        return {
            "stats": dict(stats),
            "pending": int(pending) + int(queued),
            "recent": [json.loads(item) for item in log],
            "dead_letters": [json.loads(letter) for letter in letters if letter is not None],
        }
