"""The dummy provider beyond the provider contract: its shared inventory file and its fault injection."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from pydantic import ValidationError

from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers import registry
from vmpooler.providers.base import ProviderOptions
from vmpooler.providers.dummy import DummyOptions, DummyProvider
from vmpooler.providers.dummy_inventory import COMPACT_AFTER, read_inventory

POOL = PoolTarget(name="debian-12", template="templates/debian-12")


def _dummy(**options: Any) -> DummyProvider:
    options.setdefault("ready_delay", 0)
    return DummyProvider("dummy", DummyOptions(**options))


@pytest.fixture
def inventory_file(tmp_path: Path) -> str:
    return str(tmp_path / "inventory.json")


async def _create_all(provider: DummyProvider, names: list[str]) -> list[str]:
    """Create every name; return the names whose create raised."""
    failed = []
    for name in names:
        try:
            await provider.create_vm(POOL, name)
        except ProviderError:
            failed.append(name)
    return failed


# --- the inventory file ------------------------------------------------------------------------


async def test_a_vm_outlives_the_provider_that_made_it(inventory_file: str) -> None:
    first = _dummy(filename=inventory_file)
    await first.create_vm(POOL, "vm1")
    await first.close()

    second = _dummy(filename=inventory_file)  # as if the manager restarted

    assert await second.vms_in_pool(POOL) == ["vm1"]
    assert await second.vm_ready(POOL, "vm1")
    await second.destroy_vm(POOL, "vm1")
    assert _dummy(filename=inventory_file).all_vms() == {}


async def test_concurrent_creates_from_two_instances_lose_nothing(inventory_file: str) -> None:
    a, b = _dummy(filename=inventory_file), _dummy(filename=inventory_file)

    await asyncio.gather(*(p.create_vm(POOL, f"vm{i:02}") for i, p in enumerate([a, b] * 10)))

    assert await a.vms_in_pool(POOL) == [f"vm{i:02}" for i in range(20)]
    infos = [await b.get_vm(POOL, f"vm{i:02}") for i in range(20)]
    assert all(info is not None and info.powered_on for info in infos)


async def test_concurrent_creates_from_two_processes_lose_nothing(inventory_file: str) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from vmpooler.domain import PoolTarget
        from vmpooler.providers.dummy import DummyOptions, DummyProvider

        async def main(filename, prefix):
            provider = DummyProvider("dummy", DummyOptions(filename=filename, createvm_max_time=0.01))
            pool = PoolTarget(name="debian-12", template="t")
            await asyncio.gather(*(provider.create_vm(pool, f"{prefix}{i}") for i in range(10)))

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, inventory_file, prefix)
        for prefix in ("a", "b")
    ]

    assert [await p.wait() for p in processes] == [0, 0]
    assert len(_dummy(filename=inventory_file).all_vms()["debian-12"]) == 20


async def test_the_inventory_files_are_readable_json(inventory_file: str) -> None:
    provider = _dummy(filename=inventory_file)
    await provider.create_vm(POOL, "vm1")
    journal = Path(inventory_file + ".journal")
    lines = [json.loads(line) for line in (await asyncio.to_thread(journal.read_text)).splitlines()]
    # the snapshot is JSON (written before the first change, and at each compaction); the journal JSON lines
    assert json.loads(await asyncio.to_thread(Path(inventory_file).read_text)) == {"generation": 1, "pools": {}}
    assert lines[0] == {"generation": 1} and lines[-1]["vm"]["status"] == "running"

    record = read_inventory(Path(inventory_file))["debian-12"]["vm1"]

    assert record["template"] == POOL.template
    assert record["status"] == "running"


def _stat(path: str) -> tuple[int, int]:
    """(modified ns, size) of a file; blocking, so the async tests call it between awaits."""
    found = Path(path).stat()
    return found.st_mtime_ns, found.st_size


def _text(path: str) -> str:
    return Path(path).read_text()


def _tear(path: str, text: str) -> None:
    with open(path, "a") as journal:  # a writer killed mid-line
        journal.write(text)


async def test_a_change_appends_one_line_and_leaves_the_snapshot(inventory_file: str) -> None:
    provider = _dummy(filename=inventory_file)
    await _create_all(provider, [f"vm{i}" for i in range(300)])
    snapshot, journal = _stat(inventory_file), _stat(inventory_file + ".journal")

    await provider.destroy_vm(POOL, "vm7")

    assert _stat(inventory_file) == snapshot, "the snapshot was rewritten"
    # two lines (powered off, then gone), a few hundred bytes, whatever the pool's size
    assert _stat(inventory_file + ".journal")[1] - journal[1] < 1000
    assert "vm7" not in _dummy(filename=inventory_file).all_vms()["debian-12"]


async def test_a_torn_last_line_is_skipped_and_ended_by_the_next_writer(inventory_file: str) -> None:
    await _create_all(_dummy(filename=inventory_file), ["vm1", "vm2"])
    _tear(inventory_file + ".journal", '{"pool":"debian-12","name":"vm3","vm":{"templ')

    assert read_inventory(Path(inventory_file)) == {"debian-12": {"vm1": ANY, "vm2": ANY}}
    await _dummy(filename=inventory_file).create_vm(POOL, "vm4")
    assert _dummy(filename=inventory_file).all_vms() == {"debian-12": ["vm1", "vm2", "vm4"]}


async def test_the_journal_is_folded_into_the_snapshot_now_and_then(inventory_file: str) -> None:
    provider, reader = _dummy(filename=inventory_file), _dummy(filename=inventory_file)
    await provider.create_vm(POOL, "kept")
    assert await reader.vms_in_pool(POOL) == ["kept"]  # the reader has read the first journal
    for _ in range(COMPACT_AFTER // 2 + 1):  # two lines each
        await provider.create_vm(POOL, "churn")
        await provider.destroy_vm(POOL, "churn")

    snapshot = json.loads(_text(inventory_file))
    assert snapshot["generation"] >= 2 and "kept" in snapshot["pools"]["debian-12"]
    assert len(_text(inventory_file + ".journal").splitlines()) < COMPACT_AFTER
    await provider.create_vm(POOL, "after")
    assert await reader.vms_in_pool(POOL) == ["after", "kept"]


async def test_a_corrupt_inventory_file_is_a_permanent_error(inventory_file: str) -> None:
    await asyncio.to_thread(Path(inventory_file).write_text, "not json")

    with pytest.raises(PermanentProviderError, match="inventory"):
        await _dummy(filename=inventory_file).vms_in_pool(POOL)


# --- create, ready, get, destroy ---------------------------------------------------------------


async def test_create_returns_a_running_vm_with_a_fake_address() -> None:
    info = await _dummy().create_vm(POOL, "vm1")

    assert info.hostname == "vm1"
    assert info.powered_on
    assert info.template == POOL.template
    assert info.ip is not None
    assert info.ip.startswith("192.0.2.")
    assert info.ip == (await _dummy().create_vm(POOL, "vm1")).ip  # deterministic from the name


async def test_a_vm_is_not_ready_before_ready_delay() -> None:
    provider = _dummy(ready_delay=60)
    await provider.create_vm(POOL, "vm1")

    assert not await provider.vm_ready(POOL, "vm1")
    assert not await provider.vm_ready(POOL, "missing")


@pytest.mark.parametrize("percent", [100, 0])
async def test_createvm_fail_percent(percent: int) -> None:
    provider = _dummy(createvm_fail_percent=percent)
    names = [f"vm{i}" for i in range(30)]

    failed = await _create_all(provider, names)

    assert failed == (names if percent else [])
    # a failed clone leaves a half-made, powered-off VM behind for the manager to clean up
    assert await provider.vms_in_pool(POOL) == sorted(names)
    info = await provider.get_vm(POOL, "vm0")
    assert info is not None
    assert info.powered_on is not bool(percent)
    assert info.extra["status"] == ("failed" if percent else "running")


async def test_an_injected_fault_names_its_option() -> None:
    with pytest.raises(ProviderError, match="createvm_fail_percent"):
        await _dummy(createvm_fail_percent=100).create_vm(POOL, "vm1")


async def test_a_seed_makes_faults_reproducible() -> None:
    names = [f"vm{i}" for i in range(40)]
    runs = [await _create_all(_dummy(createvm_fail_percent=50, seed=7), names) for _ in range(2)]

    assert runs[0] == runs[1]
    assert 0 < len(runs[0]) < len(names)


async def test_vmready_fail_percent_100_is_never_ready() -> None:
    provider = _dummy(vmready_fail_percent=100)
    await provider.create_vm(POOL, "vm1")

    assert not any([await provider.vm_ready(POOL, "vm1") for _ in range(20)])


async def test_getvm_poweroff_and_rename_percent() -> None:
    provider = _dummy(getvm_poweroff_percent=100, getvm_rename_percent=100)
    await provider.create_vm(POOL, "vm1")

    info = await provider.get_vm(POOL, "vm1")

    assert info is not None
    assert not info.powered_on
    assert info.hostname == "DUMMYvm1"
    assert not await provider.vm_ready(POOL, "vm1")
    assert await provider.get_vm(POOL, "missing") is None


async def test_destroyvm_fail_percent_100_keeps_the_vm() -> None:
    provider = _dummy(destroyvm_fail_percent=100)
    await provider.create_vm(POOL, "vm1")

    with pytest.raises(ProviderError, match="destroyvm_fail_percent"):
        await provider.destroy_vm(POOL, "vm1")
    assert await provider.vms_in_pool(POOL) == ["vm1"]
    await provider.destroy_vm(POOL, "missing")  # still idempotent


async def test_injected_delays_stay_within_max_time() -> None:
    provider = _dummy(createvm_max_time=0.05, destroyvm_max_time=0.05, destroyvm_max_shutdown_time=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()

    await provider.create_vm(POOL, "vm1")
    await provider.destroy_vm(POOL, "vm1")

    assert loop.time() - start < 1


# --- snapshots, disks, tags --------------------------------------------------------------------


async def test_snapshot_and_revert() -> None:
    provider = _dummy()
    await provider.create_vm(POOL, "vm1")

    await provider.create_snapshot(POOL, "vm1", "snap1")
    await provider.create_snapshot(POOL, "vm1", "snap2")
    await provider.revert_snapshot(POOL, "vm1", "snap1")

    info = await provider.get_vm(POOL, "vm1")
    assert info is not None
    assert info.extra["snapshots"] == ["snap1", "snap2"]
    with pytest.raises(ProviderError, match="no snapshot 'nope'"):
        await provider.revert_snapshot(POOL, "vm1", "nope")


async def test_create_disk_and_tag_user() -> None:
    provider = _dummy()
    await provider.create_vm(POOL, "vm1")

    await provider.create_disk(POOL, "vm1", 20)
    await provider.tag_vm_user(POOL, "vm1", "alice")

    info = await provider.get_vm(POOL, "vm1")
    assert info is not None
    assert info.extra["disks"] == [20]
    assert info.extra["tags"] == {"user": "alice"}
    with pytest.raises(PermanentProviderError):
        await provider.create_disk(POOL, "vm1", 0)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("create_snapshot", ("s",)),
        ("revert_snapshot", ("s",)),
        ("create_disk", (10,)),
        ("tag_vm_user", ("u",)),
    ],
)
async def test_acting_on_a_missing_vm_raises(call: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(PermanentProviderError, match="no VM 'missing'"):
        await getattr(_dummy(), call)(POOL, "missing", *args)


@pytest.mark.parametrize(
    ("option", "call"),
    [
        ("createsnapshot_fail_percent", "create_snapshot"),
        ("revertsnapshot_fail_percent", "revert_snapshot"),
        ("createdisk_fail_percent", "create_disk"),
    ],
)
async def test_snapshot_and_disk_fail_percents(option: str, call: str) -> None:
    provider = _dummy(**{option: 100})
    await provider.create_vm(POOL, "vm1")

    with pytest.raises(ProviderError, match=option):
        await getattr(provider, call)(POOL, "vm1", 10 if call == "create_disk" else "s")


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("createvm_fail_percent", 150), ("vmready_fail_percent", -1), ("destroyvm_max_time", -5)],
)
def test_out_of_range_options_are_rejected_by_name(option: str, value: int) -> None:
    with pytest.raises(ValidationError, match=option):
        DummyOptions.model_validate({option: value})


def test_defaults_and_plain_provider_options() -> None:
    provider = DummyProvider("dummy", ProviderOptions.model_validate({"ready_delay": 0.5}))

    assert provider.options.ready_delay == 0.5
    assert provider.options.is_ready_timeout == 5
    assert provider.options.createvm_fail_percent == 0
    assert DummyProvider("dummy").options.filename is None
    assert provider.describe() == {"name": "dummy", "class": "DummyProvider", "filename": None}


def test_the_entry_point_loads_the_dummy_provider() -> None:
    assert registry.load("dummy") is DummyProvider


#: the inventory file of the original vmpooler's dummy provider, as its YAML.dump writes it
ORIGINAL_FILE = """\
---
pool:
  debian-12:
  - name: ready-one
    hostname: ready-one
    domain: dummy.local
    vm_template: templates/debian-12
    template: debian-12
    poolname: debian-12
    ready: true
    boottime: 2026-12-05 15:29:14.408023561 +00:00
    powerstate: PoweredOn
    vm_host: HOST1
    dummy_state: RUNNING
    snapshots: []
    disks: []
  - name: cloning-one
    hostname: cloning-one
    template: debian-12
    poolname: debian-12
    ready: false
    powerstate: PoweredOn
    dummy_state: CLONING
"""


async def test_the_originals_inventory_file_is_read_and_written_back_in_its_form(tmp_path: Path) -> None:
    path = tmp_path / "dummy.yaml"
    path.write_text(ORIGINAL_FILE)
    provider = _dummy(filename=str(path))
    assert await provider.vms_in_pool(POOL) == ["cloning-one", "ready-one"]
    assert await provider.vm_ready(POOL, "ready-one") and not await provider.vm_ready(POOL, "cloning-one")
    await provider.create_vm(POOL, "ours")
    await provider.destroy_vm(POOL, "cloning-one")
    written = json.loads(path.read_text())  # JSON is YAML the original's loader accepts (no Ruby Time)
    entries = {entry["name"]: entry for entry in written["pool"]["debian-12"]}
    assert set(entries) == {"ready-one", "ours"}
    assert entries["ready-one"]["vm_host"] == "HOST1" and entries["ready-one"]["ready"] is True  # its keys kept
    assert entries["ours"]["template"] == "debian-12" and entries["ours"]["dummy_state"] == "RUNNING"
    assert entries["ours"]["vm_template"] == "templates/debian-12"
    # and read back by a fresh provider (ours after a restart, or the original's loader)
    assert await _dummy(filename=str(path)).vms_in_pool(POOL) == ["ours", "ready-one"]


def test_a_relative_filename_is_under_the_state_folder_and_its_folder_is_made(tmp_path: Path) -> None:
    provider = registry.build("dummy", {"filename": "sub/inventory.json"}, tmp_path / "state")
    assert isinstance(provider, DummyProvider)
    assert provider.options.filename == str(tmp_path / "state" / "sub" / "inventory.json")
    assert (tmp_path / "state" / "sub").is_dir()


async def test_clones_can_take_a_lognormal_time() -> None:
    """As `vmpooler simulate` draws them: the end-to-end replay compares the two."""
    provider = _dummy(createvm_mean_time=0.04, createvm_sd_time=0.01, seed=4)
    loop = asyncio.get_running_loop()
    took = []
    for i in range(12):
        started = loop.time()
        await provider.create_vm(POOL, f"vm{i}")
        took.append(loop.time() - started)
    assert min(took) > 0.01 and 0.025 < sum(took) / len(took) < 0.08
    assert len(set(took)) > 1, "a draw, not a fixed time"
