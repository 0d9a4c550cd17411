"""The event stream (docs/events.md): one entry per lifecycle change, written in the change's own step."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "EVENT_TYPES",
    "Event",
    "EventLog",
    "event_data",
    "queue_event",
    "transition_event",
]

#: ``:config: events_max_length``'s default: entries kept (about; trimmed with MAXLEN ~)
DEFAULT_MAX_LENGTH = 100_000

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "vm.cloned",
        "vm.discovered",
        "vm.ready",
        "vm.checked_out",
        "vm.returned",
        "vm.retired",
        "vm.expiring",
        "vm.destroyed",
        "vm.failed",
        "vm.quarantined",
        "vm.suspended",
        "vm.resumed",
        "pool.resized",
        "pool.breaker_opened",
        "pool.breaker_closed",
        "token.created",
        "token.revoked",
        "config.changed",
        "checkout.queued",
        "checkout.served",
        "checkout.gave_up",
    }
)


def transition_event(source: VMState, target: VMState) -> str:
    """The event a state move writes. COMPLETED is split by who let go of the VM: a user or its lifetime
    (``vm.returned``, from RUNNING) or the manager, before anyone used it (``vm.retired``)."""
    if target is VMState.COMPLETED:
        return "vm.returned" if source is VMState.RUNNING else "vm.retired"
    if source is VMState.SUSPENDED and target is VMState.READY:
        return "vm.resumed"
    return {
        VMState.READY: "vm.ready",
        VMState.RUNNING: "vm.checked_out",
        VMState.FAILED: "vm.failed",
        VMState.DESTROYED: "vm.destroyed",
        VMState.DISCOVERED: "vm.discovered",
        VMState.PENDING: "vm.cloned",
        VMState.QUARANTINE: "vm.quarantined",
        VMState.SUSPENDED: "vm.suspended",
    }[target]


def event_data(**values: Any) -> str:
    """An event's ``data`` field: a compact JSON object (None values left out)."""
    return json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))


def at_field(at: float | None = None) -> str:
    """An event's ``at`` field: epoch seconds as a decimal string, to the millisecond."""
    return f"{time.time() if at is None else at:.3f}"


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the stream as readers see it; ``id`` is the stream id (``<ms>-<seq>``)."""

    id: str
    type: str
    pool: str = ""
    vm: str = ""
    owner: str = ""
    at: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry_id: str, fields: Mapping[str, str]) -> Event:
        try:
            data = json.loads(fields.get("data") or "{}")
        except ValueError:
            data = {"raw": fields.get("data")}
        try:
            at = float(fields.get("at") or 0.0)
        except ValueError:
            at = 0.0
        return cls(
            id=entry_id,
            type=fields.get("type", ""),
            pool=fields.get("pool", ""),
            vm=fields.get("vm", ""),
            owner=fields.get("owner", ""),
            at=at,
            data=data if isinstance(data, dict) else {"value": data},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "pool": self.pool,
            "vm": self.vm,
            "owner": self.owner,
            "at": self.at,
            "data": self.data,
        }


def queue_event(
    pipe: Pipeline,
    max_length: int,
    event_type: str,
    *,
    pool: str = "",
    vm: str = "",
    owner: str = "",
    data: str = "{}",
    at: float | None = None,
) -> None:
    """Queue one event's XADD in ``pipe`` (a MULTI pipeline: it is written with the change or not at all).
    The Python half of the one documented way to emit; Lua scripts call ``emit_event`` instead."""
    fields = {"type": event_type, "pool": pool, "vm": vm, "owner": owner, "at": at_field(at), "data": data}
    pipe.xadd(keys.EVENT_STREAM, fields, maxlen=max_length, approximate=True)  # type: ignore[arg-type]


def parse_entries(entries: Sequence[Any]) -> list[Event]:
    return [
        Event.from_entry(str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()})
        for entry_id, fields in entries
    ]


class EventLog:
    """Reads and trims the stream; the writers are the state scripts and ``queue_event``."""

    def __init__(self, client: Redis, expiring_script: AsyncScript, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.client = client
        self.max_length = max_length
        self._expiring = expiring_script

    async def after(self, since: str = "0", count: int = 1000) -> list[Event]:
        """Up to ``count`` events after stream id ``since`` ("0": from the oldest kept), oldest first."""
        start = "-" if since in ("", "0", "0-0") else f"({since}"
        async with translated():
            return parse_entries(await self.client.xrange(keys.EVENT_STREAM, start, "+", count=count) or [])

    async def last_id(self) -> str:
        """The newest event's id ("0-0" when the stream is empty): following from it sees only new ones."""
        async with translated():
            found = await self.client.xrevrange(keys.EVENT_STREAM, "+", "-", count=1)
        return str(found[0][0]) if found else "0-0"

    async def trim(self, max_age_seconds: float, now: float | None = None) -> int:
        """Drop events older than ``max_age_seconds`` (MINID ~: whole nodes only, so it stays cheap)."""
        oldest_ms = int(((time.time() if now is None else now) - max_age_seconds) * 1000)
        async with translated():
            return int(await self.client.xtrim(keys.EVENT_STREAM, minid=f"{max(oldest_ms, 0)}-0", approximate=True))

    async def warn_expiring(self, pools: Sequence[str], now: float, lead_seconds: float, limit: int = 500) -> list[str]:
        """Write ``vm.expiring`` for each running VM of ``pools`` whose lifetime ends within ``lead_seconds``
        and that has not been warned of this deadline yet (the deadline index: store/deadlines.py). One
        pipelined read for every pool; a script runs only for the pools with VMs due."""
        if not pools:
            return []
        async with translated():
            async with self.client.pipeline(transaction=False) as pipe:
                for pool in pools:
                    pipe.zrangebyscore(keys.lifetime_ends(pool), now, now + lead_seconds, start=0, num=limit)
                due = await pipe.execute()
            warned: list[str] = []
            for pool, found in zip(pools, due, strict=True):
                names = [str(n) for n in found]
                if names:
                    done = await self._expiring(
                        keys=[keys.lifetime_ends(pool), keys.EVENT_STREAM, *(keys.vm(n) for n in names)],
                        args=[pool, at_field(now), repr(now + lead_seconds), self.max_length, *names],
                    )
                    warned += [str(n) for n in done]
        return warned
