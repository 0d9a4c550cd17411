"""The audit trail (docs/audit.md): who did what through the API, when, with what result; a bounded stream."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated

__all__ = ["AuditEntry", "AuditTrail"]

#: the most entries one query looks through for its matches: a filter that matches little stays cheap
SCAN_LIMIT = 50_000
PAGE = 1_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One request: ``who`` (user), ``token`` (a hint: last 4 characters, never the token), ``address``
    (the client), ``method`` and ``route`` (the template, not the raw path), the ``vm``/``pool``/``target``
    acted on, the ``status`` answered, and ``at`` (epoch seconds)."""

    user: str
    token: str
    address: str
    method: str
    route: str
    status: int
    at: float
    vm: str = ""
    pool: str = ""
    target: str = ""
    id: str = ""

    def fields(self) -> dict[str, str]:
        return {
            "user": self.user,
            "token": self.token,
            "address": self.address,
            "method": self.method,
            "route": self.route,
            "status": str(self.status),
            "at": f"{self.at:.3f}",
            "vm": self.vm,
            "pool": self.pool,
            "target": self.target,
        }

    @classmethod
    def from_entry(cls, entry_id: str, fields: Mapping[str, str]) -> AuditEntry:
        def number(name: str) -> float:
            try:
                return float(fields.get(name) or 0)
            except ValueError:
                return 0.0

        return cls(
            user=fields.get("user", ""),
            token=fields.get("token", ""),
            address=fields.get("address", ""),
            method=fields.get("method", ""),
            route=fields.get("route", ""),
            status=int(number("status")),
            at=number("at"),
            vm=fields.get("vm", ""),
            pool=fields.get("pool", ""),
            target=fields.get("target", ""),
            id=entry_id,
        )

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, **self.fields(), "status": self.status, "at": self.at}


class AuditTrail:
    def __init__(self, client: Redis, max_length: int = 1_000_000) -> None:
        self.client = client
        self.max_length = max_length

    async def record(self, entry: AuditEntry) -> None:
        await self.record_many([entry])

    async def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """The entries in order, in one round trip."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xadd(
                    keys.AUDIT_STREAM,
                    entry.fields(),  # type: ignore[arg-type]
                    maxlen=self.max_length,
                    approximate=True,
                )
            await pipe.execute()

    async def query(
        self,
        *,
        user: str | None = None,
        vm: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries matching every filter given (times in epoch seconds), newest first."""
        high = "+" if until is None else f"{int(until * 1000)}"
        low = "-" if since is None else f"{int(since * 1000)}"
        found: list[AuditEntry] = []
        scanned = 0
        async with translated():
            while len(found) < limit and scanned < SCAN_LIMIT:
                page = await self.client.xrevrange(keys.AUDIT_STREAM, high, low, count=PAGE)
                if not page:
                    break
                scanned += len(page)
                for entry_id, fields in page:
                    entry = AuditEntry.from_entry(str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()})
                    if (user is None or entry.user == user) and (vm is None or entry.vm == vm):
                        found.append(entry)
                        if len(found) == limit:
                            break
                high = f"({page[-1][0]!s}"
        return found

    async def trim(self, retention_seconds: float, now: float | None = None) -> int:
        oldest_ms = int(((time.time() if now is None else now) - retention_seconds) * 1000)
        async with translated():
            return int(await self.client.xtrim(keys.AUDIT_STREAM, minid=f"{max(oldest_ms, 0)}-0", approximate=True))
