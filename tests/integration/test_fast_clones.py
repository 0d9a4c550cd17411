"""``clone_from: memory``: clones of the real test guest restored from one saved memory state, each its own machine.

The template boots once (a TCG boot, the slow part); each clone then starts from the saved RAM with a
disk overlay of its own, and its guest agent gives it a new hostname, MAC and host key while the
``vmgenid`` device reseeds its RNG. The guest's banner shows all four (tests/support/guest.py). The
template is booted and saved once, however many clones wait for it and even when the first is cancelled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.test_qemu import BOOT_TIMEOUT, banner, provider_for, record_of, wait_ready
from tests.support.guest import BANNER_PREFIX, Guest
from vmpooler.domain import PoolTarget
from vmpooler.providers.qemu import qmp


def banner_fields(line: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


@pytest.mark.timeout(BOOT_TIMEOUT * 3)
async def test_clones_restored_from_one_memory_state_share_no_hostname_host_key_mac_or_random_stream(
    test_guest: Guest, qemu_state_dir: Path
) -> None:
    provider = provider_for(test_guest, qemu_state_dir)  # the provider boots; the pool asks for restores
    pool = PoolTarget("fast", str(test_guest.template_disk), {"clone_from": "memory"})
    names = ["fast-a", "fast-b"]
    # the first clone's time limit runs out while the template boots: the build goes on for the clones after it
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.create_vm(pool, "fast-a"), 2.0)
    await provider.destroy_vm(pool, "fast-a")
    infos = await asyncio.gather(*(provider.create_vm(pool, name) for name in names))  # both wait for one build
    seen: dict[str, dict[str, str]] = {}
    for name, info in zip(names, infos, strict=True):
        await wait_ready(provider, pool, name)
        record = record_of(qemu_state_dir, "fast", name)
        assert "-incoming" in record.argv  # restored, not booted
        line = await banner(str(info.ip))
        assert line.startswith(f"{BANNER_PREFIX} {name} disk=ok"), line  # its own name, on the template's disk
        seen[name] = banner_fields(line)
        assert seen[name]["mac"] == record.mac  # the guest took the clone's MAC...
        async with qmp.session(qemu_state_dir / "fast" / f"{name}.qmp") as monitor:
            (nic,) = await monitor.execute("query-rx-filter")
        assert nic["main-mac"] == record.mac  # ...and told QEMU, whose restored device had the template's
    first, second = (seen[name] for name in names)
    for field in ("hostkey", "mac", "random"):
        assert first[field] != second[field], field
    (state,) = (path for path in (qemu_state_dir / ".memstate" / "fast").iterdir() if path.is_dir())  # served both
    assert (state / "complete").exists() and (state / "memory.state").stat().st_size > 0
    assert (state / "template.log").read_text().count("launching template") == 1  # the template booted once
    for name in names:
        await provider.destroy_vm(pool, name)
    assert sorted(path.name for path in (qemu_state_dir / "fast").iterdir()) == []
