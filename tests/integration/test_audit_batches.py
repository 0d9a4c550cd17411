"""The audit trail keeps every entry of a burst of requests, written in batches rather than one by one."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from tests.support.waiting import until
from vmpooler.api.middleware.audit import AuditRequests
from vmpooler.store.redis import Store

BURST = 40


async def reads(store: Store) -> int:
    """Redis's count of reads from client sockets: one per round trip (a pipeline is read whole)."""
    return int((await store.client.info("stats"))["total_reads_processed"])


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(0)  # as a route does: the replies of a burst go out interleaved
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def test_a_burst_of_requests_is_audited_whole_in_a_few_round_trips(store: Store) -> None:
    audit = AuditRequests(answer, store.audit_trail)

    async def request(i: int) -> None:
        scope = {"type": "http", "method": "DELETE", "path": f"/api/v3/vm/vm{i}", "headers": [],
                 "client": ("192.0.2.7", 4000 + i), "path_params": {"hostname": f"vm{i}"}}  # fmt: skip

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(_: Message) -> None:
            pass

        await audit(scope, receive, send)

    before = await reads(store)
    await asyncio.gather(*(request(i) for i in range(BURST)))

    async def written() -> bool:
        return len(await store.audit_trail.query(limit=2 * BURST)) == BURST

    await until(written, "every request in the audit trail")
    entries = await store.audit_trail.query(limit=2 * BURST)
    assert sorted(e.vm for e in entries) == sorted(f"vm{i}" for i in range(BURST))
    assert {(e.method, e.address) for e in entries} == {("DELETE", "192.0.2.7")}
    # one XADD round trip per entry was BURST of them; the polls above read one page each
    assert await reads(store) - before < BURST // 2, "the burst's entries went one round trip each"
