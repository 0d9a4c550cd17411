"""The qemu provider booting the real test guest (TCG where KVM does not work), one state directory per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.contract.cases import CaseFactory, ProviderCase
from tests.support.guest import Guest
from vmpooler.domain import PoolTarget
from vmpooler.providers.qemu import QemuOptions, QemuProvider


@asynccontextmanager
async def _qemu(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
    guest: Guest = request.getfixturevalue("test_guest")
    state: Path = request.getfixturevalue("qemu_state_dir")
    options = QemuOptions(
        state_dir=str(state), memory_mb=256, kernel=str(guest.kernel), initrd=str(guest.initrd), shutdown_grace=5
    )
    pool = PoolTarget(name=f"contract-{uuid.uuid4().hex[:8]}", template=str(guest.template_disk))
    # a TCG boot takes 5-12 s alone; a busy 2-core machine can triple that
    yield ProviderCase(
        QemuProvider("qemu", options), pool, ready_timeout=120.0, bad_template=str(tmp_path / "missing.qcow2")
    )


CASES: dict[str, CaseFactory] = {"qemu": _qemu}
