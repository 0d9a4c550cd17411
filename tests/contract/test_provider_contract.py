"""The contract every provider keeps; each provider under test is one case in ``tests/contract/cases/``.

To add a provider, add a module there defining ``CASES``; every test then runs against it. Names are
unique per test so a real hypervisor or simulator can be shared by the whole session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.cases import ProviderCase, all_cases
from vmpooler.domain import PoolTarget
from vmpooler.errors import ProviderError
from vmpooler.providers.base import Provider

ProviderAndPool = tuple[Provider, PoolTarget]
CASES = all_cases()


@pytest.fixture(params=sorted(CASES))
async def provider_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
    async with CASES[request.param](request, tmp_path) as case:
        try:
            yield case
        finally:
            for target in (case.pool, _other_pool(case.pool)):  # leave nothing behind on a shared hypervisor
                for name in await case.provider.vms_in_pool(target):
                    await case.provider.destroy_vm(target, name)
            await case.provider.close()


@pytest.fixture
def provider_factory(provider_case: ProviderCase) -> ProviderAndPool:
    return provider_case.provider, provider_case.pool


def _other_pool(pool: PoolTarget) -> PoolTarget:
    return dataclasses.replace(pool, name=f"{pool.name}-other")


def _vm_name() -> str:
    return f"vm-{uuid.uuid4().hex[:10]}"


async def _wait_ready(provider: Provider, pool: PoolTarget, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await provider.vm_ready(pool, name):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_created_vm_is_listed_and_found(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory
    name = _vm_name()

    info = await provider.create_vm(pool, name)

    assert info.name == name
    assert info.pool == pool.name
    assert name in await provider.vms_in_pool(pool)
    found = await provider.get_vm(pool, name)
    assert found is not None
    assert found.name == name
    assert found.pool == pool.name


async def test_created_vm_becomes_ready(provider_case: ProviderCase) -> None:
    provider, pool = provider_case.provider, provider_case.pool
    name = _vm_name()
    await provider.create_vm(pool, name)

    assert await _wait_ready(provider, pool, name, provider_case.ready_timeout)


async def test_destroyed_vm_is_gone(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory
    name = _vm_name()
    await provider.create_vm(pool, name)

    await provider.destroy_vm(pool, name)

    assert name not in await provider.vms_in_pool(pool)
    assert await provider.get_vm(pool, name) is None


async def test_destroying_a_missing_vm_succeeds(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory
    name = _vm_name()
    await provider.create_vm(pool, name)
    await provider.destroy_vm(pool, name)

    await provider.destroy_vm(pool, name)  # repeated, as after a crash mid-destroy: must not raise
    assert await provider.get_vm(pool, name) is None
    await provider.destroy_vm(pool, _vm_name())  # never existed


async def test_get_vm_of_a_missing_name_is_none(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory

    assert await provider.get_vm(pool, _vm_name()) is None


async def test_pools_are_isolated(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory
    other = _other_pool(pool)
    name, other_name = _vm_name(), _vm_name()

    await provider.create_vm(pool, name)
    await provider.create_vm(other, other_name)

    assert name in await provider.vms_in_pool(pool)
    assert other_name not in await provider.vms_in_pool(pool)
    assert other_name in await provider.vms_in_pool(other)
    assert name not in await provider.vms_in_pool(other)
    assert await provider.get_vm(other, name) is None
    await provider.destroy_vm(other, name)  # a name from another pool: nothing to do
    assert name in await provider.vms_in_pool(pool)


async def test_creating_a_duplicate_name_raises(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory
    name = _vm_name()
    await provider.create_vm(pool, name)

    with pytest.raises(ProviderError):
        await provider.create_vm(pool, name)
    assert (await provider.vms_in_pool(pool)).count(name) == 1
