"""The demo traffic of `make run` checks VMs out as several users and returns them later."""

from __future__ import annotations

import asyncio
import time

from tests.support.pools import settings_with
from vmpooler.api.services.vms import VMService
from vmpooler.demo import demo_traffic
from vmpooler.states import VMState
from vmpooler.store.redis import Store


async def test_demo_traffic_checks_out_and_returns(store: Store) -> None:
    for i in range(20):
        assert await store.create_pending("deb", f"vm{i}", {})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)
    service = VMService(settings_with([{"name": "deb", "template": "t", "size": 20}]), store)
    stop = asyncio.Event()
    task = asyncio.create_task(demo_traffic(service, stop, seed=3, pause=(0.01, 0.02), hold=(0.05, 0.1)))
    await asyncio.sleep(0.6)
    stop.set()
    await asyncio.wait_for(task, 5)
    members = await store.all_members("deb")
    assert members[VMState.COMPLETED], "some VMs were returned"
    users = {(await store.vm(n)).get("token:user") for n in members[VMState.COMPLETED] | members[VMState.RUNNING]}
    assert len(users) >= 2
