"""A real QEMU guest whose SSH service stops answering is never handed out: quarantined, then released.

The test guest has no agent to kill its sshd with, so the guest is frozen through QMP (``stop``): its
forwarded port still accepts connections (QEMU's user networking answers for it) while nothing inside
answers, which is what a hung or killed sshd looks like from outside, and the harder case for a check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_qemu import BOOT_TIMEOUT, qemu_options
from tests.support.fixtures.guest import Guest
from tests.support.pools import run_until
from tests.support.servers import ApiThread
from vmpooler.cli.quarantine import _release
from vmpooler.config import parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.providers import registry
from vmpooler.providers.qemu import qmp
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store


async def test_a_guest_whose_ssh_stops_answering_is_quarantined_not_handed_out(
    test_guest: Guest, qemu_state_dir: Path, store: Store, redis_port: int
) -> None:
    pool: dict[str, Any] = {
        "name": "tiny",
        "template": str(test_guest.template_disk),
        "size": 1,
        "provider": "qemu",
        "handout_check": {"ssh": 22, "budget_ms": 1500},  # TCG on a loaded machine: a generous budget
    }
    raw = {
        "pools": [pool],
        "providers": {"qemu": qemu_options(test_guest, qemu_state_dir)},
        "config": {"check_loop_delay_min": 0.5},
        "redis": {"server": "127.0.0.1", "port": redis_port},
    }
    settings, _ = parse_settings(raw, env={})
    provider = registry.build("qemu", settings.provider_options("qemu"))
    manager = Manager(settings, store, {"qemu": provider}, call_timeout=BOOT_TIMEOUT, ready_poll_interval=0.5)
    await manager.register_pools()

    async def filled() -> bool:
        return bool(await store.members("tiny", VMState.READY))

    await run_until(manager, filled, timeout=BOOT_TIMEOUT + 30, pause=0.5)
    await store.client.hset(keys.CONFIG_POOLSIZE, "tiny", "0")  # one guest only: no refill
    (name,) = await store.members("tiny", VMState.READY)
    target = manager.reconcilers["tiny"].ctx.target
    info = await provider.get_vm(target, name)
    assert info is not None
    monitor_path = Path(info.extra["qmp_socket"])
    try:
        async with qmp.session(monitor_path) as monitor:
            await monitor.execute("stop")  # sshd stops answering; the port forward still accepts
        with ApiThread(settings, redis_port) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                reply = await client.post("/api/v3/vm", json={"tiny": 1})
                assert reply.status_code == 503 and reply.json()["ok"] is False, reply.text
                assert await store.members("tiny", VMState.QUARANTINE) == {name}
                assert "no answer within 1500 ms" in (await store.vm(name))["quarantine_reason"]

                # the operator finds the cause and revives the guest: release checks it again first
                async with qmp.session(monitor_path) as monitor:
                    await monitor.execute("cont")
                assert await _release(settings, [name], force=False) == {name: None}
                reply = await client.post("/api/v3/vm", json={"tiny": 1})
                assert reply.status_code == 200, reply.text
                assert reply.json()["tiny"]["hostname"].split(".")[0] == name
    finally:
        await provider.destroy_vm(target, name)
        await provider.close()
