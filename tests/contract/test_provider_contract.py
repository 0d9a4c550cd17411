"""The contract every provider keeps; each provider under test is one case in ``tests/contract/cases/``.

To add a provider, add a module there defining ``CASES``; every test then runs against it. Names are
unique per test so a real hypervisor or simulator can be shared by the whole session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.cases import ProviderCase, all_cases
from tests.support.waiting import until
from vmpooler.domain import PoolTarget
from vmpooler.errors import NotSupported, PermanentProviderError, ProviderError
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

    await until(lambda: provider.vm_ready(pool, name), f"{name} ready", timeout=provider_case.ready_timeout)
    assert await provider.vm_ready(pool, name)


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


async def test_a_template_that_does_not_exist_is_a_permanent_error(provider_case: ProviderCase) -> None:
    provider, pool = provider_case.provider, provider_case.pool
    bad = dataclasses.replace(pool, template=provider_case.bad_template)
    name = _vm_name()

    with pytest.raises(PermanentProviderError):  # retrying cannot help: the manager must not keep cloning
        await provider.create_vm(bad, name)
    assert name not in await provider.vms_in_pool(bad)


async def test_vm_ready_of_a_missing_vm_is_false(provider_factory: ProviderAndPool) -> None:
    provider, pool = provider_factory

    assert await provider.vm_ready(pool, _vm_name()) is False


async def test_snapshots_and_disks_work_or_are_not_supported(provider_case: ProviderCase) -> None:
    provider, pool = provider_case.provider, provider_case.pool
    name = _vm_name()
    await provider.create_vm(pool, name)
    await until(lambda: provider.vm_ready(pool, name), f"{name} ready", timeout=provider_case.ready_timeout)

    # each call either does its work or says it cannot (NotSupported); any other error breaks the contract
    with contextlib.suppress(NotSupported):
        await provider.create_snapshot(pool, name, "contract1")
        with contextlib.suppress(NotSupported):
            await provider.revert_snapshot(pool, name, "contract1")
    with contextlib.suppress(NotSupported):
        await provider.create_disk(pool, name, 1)
    assert await provider.get_vm(pool, name) is not None
