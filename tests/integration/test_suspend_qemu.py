"""A real guest suspended by the qemu provider (no process, its RAM in a file) and resumed as the same machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_fast_clones import banner_fields
from tests.integration.test_qemu import (
    BOOT_TIMEOUT,
    banner,
    banner_count,
    leftovers,
    provider_for,
    record_of,
    wait_ready,
)
from tests.support.guest import BANNER_PREFIX, Guest
from vmpooler.domain import PoolTarget
from vmpooler.providers.qemu import process


@pytest.mark.timeout(BOOT_TIMEOUT * 2)
async def test_a_suspended_guest_holds_no_process_and_resumes_as_the_same_machine(
    test_guest: Guest, qemu_state_dir: Path
) -> None:
    provider = provider_for(test_guest, qemu_state_dir)
    pool = PoolTarget("sus", str(test_guest.template_disk))
    info = await provider.create_vm(pool, "sus-vm")
    assert info.ip is not None
    await wait_ready(provider, pool, "sus-vm")
    before = banner_fields(await banner(info.ip))
    pid = record_of(qemu_state_dir, "sus", "sus-vm").pid
    assert pid is not None

    await provider.suspend_vm(pool, "sus-vm")
    assert not process.is_ours(pid, record_of(qemu_state_dir, "sus", "sus-vm").uid)  # no CPU, no RAM held
    saved = qemu_state_dir / "sus" / "sus-vm.suspended"
    assert saved.stat().st_size > 0
    assert not await provider.vm_ready(pool, "sus-vm")
    assert await provider.vms_in_pool(pool) == ["sus-vm"]  # still the pool's VM
    await provider.suspend_vm(pool, "sus-vm")  # again: nothing to do

    await provider.resume_vm(pool, "sus-vm")
    await provider.resume_vm(pool, "sus-vm")  # again (a crash after the resume): nothing to do
    assert await provider.vm_ready(pool, "sus-vm") and not saved.exists()
    assert await provider.get_vm_ip_address(pool, "sus-vm") == info.ip  # reached where it was
    line = await banner(info.ip)
    after = banner_fields(line)
    assert line.startswith(f"{BANNER_PREFIX} sus-vm ")
    assert {k: after[k] for k in ("hostkey", "mac")} == {k: before[k] for k in ("hostkey", "mac")}
    # its memory went on counting the banners it served (probes count too); a new boot would start again at 1
    assert banner_count(line) > int(before["count"])

    await provider.destroy_vm(pool, "sus-vm")
    assert leftovers(qemu_state_dir, "sus") == []
