"""Where a libvirt VM's files live: one directory per VM, ``<state_dir>/<pool>/<name>/``, made and removed whole.

The directory holds the overlay (``root.qcow2``), the disks added through the API
(``disk1.qcow2``, ...) and the guest's console (``console.log``). Making it is the first step of a
clone, so a second clone of one name fails before anything is written, and a directory whose domain
was never defined (a manager killed mid-clone) still shows up, to be destroyed. Blocking calls: run
them in a thread.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.localvm.records import SAFE_NAME


@dataclass(frozen=True)
class VMDir:
    """One VM's directory."""

    path: Path

    @property
    def overlay(self) -> Path:
        return self.path / "root.qcow2"

    @property
    def console(self) -> Path:
        return self.path / "console.log"

    def next_disk(self) -> Path:
        """The first ``diskN.qcow2`` that does not exist yet."""
        number = 1
        while (self.path / f"disk{number}.qcow2").exists():
            number += 1
        return self.path / f"disk{number}.qcow2"


class Layout:
    """The VM directories under one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def vm(self, pool: str, name: str) -> VMDir:
        for what, value in (("pool", pool), ("VM", name)):
            if not SAFE_NAME.fullmatch(value):
                raise PermanentProviderError(f"{what} name {value!r} cannot be a file name (use A-Z a-z 0-9 _ . -)")
        return VMDir(self.state_dir / pool / name)

    def claim(self, vm: VMDir) -> None:
        """Make the VM's directory; ProviderError when the name is taken (its directory exists)."""
        try:
            vm.path.parent.mkdir(parents=True, exist_ok=True)
            vm.path.mkdir()
        except FileExistsError as exc:
            raise ProviderError(f"VM {vm.path.name!r} already exists ({vm.path})") from exc
        except OSError as exc:
            raise ProviderError(f"cannot make {vm.path}: {exc}") from exc

    def names(self, pool: str) -> list[str]:
        """The VMs of ``pool`` that have a directory."""
        directory = self.state_dir / pool
        if not SAFE_NAME.fullmatch(pool) or not directory.is_dir():
            return []
        return sorted(path.name for path in directory.iterdir() if path.is_dir() and SAFE_NAME.fullmatch(path.name))

    @staticmethod
    def remove(vm: VMDir) -> None:
        try:
            shutil.rmtree(vm.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ProviderError(f"cannot remove {vm.path}: {exc}") from exc
