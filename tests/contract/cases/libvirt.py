"""The libvirt provider on the session's private libvirtd, booting the real test guest (TCG where KVM does not work)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.contract.cases import CaseFactory, ProviderCase
from tests.support.fixtures.libvirtd import LibvirtDaemon
from tests.support.guest import Guest
from vmpooler.domain import PoolTarget


@asynccontextmanager
async def _libvirt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
    guest: Guest = request.getfixturevalue("test_guest")
    daemon: LibvirtDaemon = request.getfixturevalue("libvirtd")
    state: Path = request.getfixturevalue("libvirt_state_dir")
    from vmpooler.providers.libvirt import LibvirtOptions, LibvirtProvider  # needs the libvirt binding

    options = LibvirtOptions(
        uri=daemon.uri, state_dir=str(state), memory_mb=256, kernel=str(guest.kernel), initrd=str(guest.initrd)
    )
    pool = PoolTarget(name=f"contract-{uuid.uuid4().hex[:8]}", template=str(guest.template_disk))
    # a TCG boot takes 5-12 s alone; a busy 2-core machine can triple that
    yield ProviderCase(
        LibvirtProvider("libvirt", options), pool, ready_timeout=120.0, bad_template=str(tmp_path / "missing.qcow2")
    )


CASES: dict[str, CaseFactory] = {"libvirt": _libvirt}
