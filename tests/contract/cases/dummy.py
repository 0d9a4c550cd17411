"""The dummy provider, in memory and with its shared inventory file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.contract.cases import CaseFactory, ProviderCase
from vmpooler.domain import PoolTarget
from vmpooler.providers.dummy import DummyOptions, DummyProvider

#: the one template these dummies know: any other is "not found", as on a real hypervisor
TEMPLATE = "templates/debian-12"


def _pool() -> PoolTarget:
    return PoolTarget(name=f"contract-{uuid.uuid4().hex[:8]}", template=TEMPLATE)


@asynccontextmanager
async def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
    options = DummyOptions(ready_delay=0.2, templates=[TEMPLATE])
    yield ProviderCase(DummyProvider("dummy", options), _pool())


@asynccontextmanager
async def _file(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
    options = DummyOptions(ready_delay=0.2, filename=str(tmp_path / "inventory.json"), templates=[TEMPLATE])
    yield ProviderCase(DummyProvider("dummy", options), _pool())


CASES: dict[str, CaseFactory] = {"dummy-memory": _memory, "dummy-file": _file}
