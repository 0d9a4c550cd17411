"""Disk images through ``qemu-img``: linked copy-on-write overlays over a base that is never written,
blank disks, and the internal snapshots an image holds (read while a VM runs it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.localvm.commands import run

IMAGE_TIMEOUT = 120.0


async def create_overlay(qemu_img: str, base: Path, overlay: Path) -> None:
    """A qcow2 ``overlay`` whose unwritten blocks read from ``base`` (a qcow2 template, left untouched).

    ``base`` should be absolute: the overlay records it as given.
    """
    if not await asyncio.to_thread(base.is_file):
        raise PermanentProviderError(f"template {base} does not exist or is not a file")
    await run([qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(overlay)], IMAGE_TIMEOUT)


async def create_blank(qemu_img: str, path: Path, size_gb: int) -> None:
    """An empty qcow2 of ``size_gb`` GiB (allocated as it is written)."""
    if size_gb < 1:
        raise PermanentProviderError(f"a disk must be at least 1 GB, not {size_gb}")
    await run([qemu_img, "create", "-q", "-f", "qcow2", str(path), f"{size_gb}G"], IMAGE_TIMEOUT)


async def info(qemu_img: str, image: Path) -> dict[str, object]:
    """``qemu-img info`` as JSON; ``-U`` lets it read an image a running VM holds open."""
    done = await run([qemu_img, "info", "-U", "--output=json", str(image)], IMAGE_TIMEOUT)
    try:
        parsed: dict[str, object] = json.loads(done.stdout)
    except ValueError as exc:
        raise ProviderError(f"qemu-img info {image}: not JSON: {exc}") from exc
    return parsed


async def snapshots(qemu_img: str, image: Path) -> list[str]:
    """Names of the internal snapshots in ``image`` (readable while a VM runs it)."""
    found = (await info(qemu_img, image)).get("snapshots")
    entries = found if isinstance(found, list) else []
    return [str(entry["name"]) for entry in entries if isinstance(entry, dict) and "name" in entry]
