"""What of ``clone_from: memory`` needs no VM: the state's fingerprint, its one-builder lock, the config key."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import yaml

from vmpooler.providers.localvm.options import Machine
from vmpooler.providers.qemu import memstate
from vmpooler.providers.qemu.argv import Host
from vmpooler.validate import validate_file

HOST = Host("qemu-system-x86_64", "pc", "127.0.0.1")


def machine(**changes: object) -> Machine:
    shape = Machine(256, 1, "user", "virbr0", "ssh", 22, None, None, "console=ttyS0")
    return dataclasses.replace(shape, **changes)


def test_the_fingerprint_changes_with_the_template_file_and_the_machine_shape(tmp_path: Path) -> None:
    template = tmp_path / "template.qcow2"
    template.write_bytes(b"image")
    first = memstate.fingerprint(template, machine(), HOST, "tcg")

    assert memstate.fingerprint(template, machine(), HOST, "tcg") == first  # stable
    assert memstate.fingerprint(template, machine(memory_mb=512), HOST, "tcg") != first
    assert memstate.fingerprint(template, machine(), HOST, "kvm") != first
    os.utime(template, ns=(1, 1))  # the same path, rewritten
    assert memstate.fingerprint(template, machine(), HOST, "tcg") != first


async def test_one_builder_at_a_time_holds_a_pools_lock(tmp_path: Path) -> None:
    inside: list[str] = []
    overlaps: list[int] = []

    async def build(name: str) -> None:
        async with memstate._locked(tmp_path / "pool" / ".lock"):
            inside.append(name)
            overlaps.append(len(inside))
            await asyncio.sleep(0.3)
            inside.remove(name)

    await asyncio.gather(build("a"), build("b"), build("c"))

    assert overlaps == [1, 1, 1]


def test_a_bad_clone_from_is_named_by_its_key_path(tmp_path: Path) -> None:
    pool = {"name": "fast", "template": str(tmp_path / "t.qcow2"), "size": 1, "provider": "qemu"}
    config = {"providers": {"qemu": {"clone_from": "memory"}}, "pools": [{**pool, "clone_from": "ram"}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))

    errors, _ = validate_file(path, env={})

    assert len(errors) == 1 and errors[0].startswith("pools[0].clone_from:"), errors
