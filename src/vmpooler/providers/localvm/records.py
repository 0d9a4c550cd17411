"""The state directory: one JSON metadata file per VM beside its overlay, pid file, sockets and logs.

Layout: ``<state_dir>/<pool>/<name>.json`` (the metadata), ``<name>.qcow2`` (the overlay),
``<name>-disk<N>.qcow2`` (added disks), ``<name>.pid``, ``<name>.qmp``, ``<name>.log`` (the
hypervisor's own error output) and ``<name>.serial.log`` (the guest console). The metadata is
created exclusively (a duplicate name fails) and rewritten atomically (readers see the old file or
the new one, never half), and it is written before anything else and removed last, so whatever a
crash leaves behind is still listed and can be destroyed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from vmpooler.errors import PermanentProviderError, ProviderError

#: pool and VM names become file names: keep them to characters that need no quoting anywhere
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class VMRecord(BaseModel):
    """What the provider knows about one VM, kept across restarts of the manager."""

    pool: str
    name: str
    #: unique per VM and present on the hypervisor's command line: tells our process from a reused pid
    uid: str
    template: str
    created: float
    mac: str
    network: str
    port: int | None = None
    pid: int | None = None
    started: float | None = None
    accel: str | None = None
    argv: list[str] = []
    disks: list[str] = []


@dataclass(frozen=True)
class VMFiles:
    """Where one VM's files live."""

    directory: Path
    name: str

    @property
    def metadata(self) -> Path:
        return self.directory / f"{self.name}.json"

    @property
    def overlay(self) -> Path:
        return self.directory / f"{self.name}.qcow2"

    @property
    def pidfile(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def qmp(self) -> Path:
        return self.directory / f"{self.name}.qmp"

    @property
    def agent(self) -> Path:
        """The socket of the guest agent's channel (a VM restored from a saved memory state has one)."""
        return self.directory / f"{self.name}.agent"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    @property
    def serial(self) -> Path:
        return self.directory / f"{self.name}.serial.log"

    @property
    def suspended(self) -> Path:
        """A suspended VM's RAM and device state (QEMU's migration stream); present only while it is suspended."""
        return self.directory / f"{self.name}.suspended"

    def disk(self, number: int) -> Path:
        return self.directory / f"{self.name}-disk{number}.qcow2"

    def all_files(self, record: VMRecord | None) -> list[Path]:
        """Every file the VM may own, the metadata last."""
        disks = (
            [Path(disk) for disk in record.disks] if record else list(self.directory.glob(f"{self.name}-disk*.qcow2"))
        )
        return [
            self.overlay,
            *disks,
            self.pidfile,
            self.qmp,
            self.agent,
            self.suspended,
            self.log,
            self.serial,
            self.metadata,
        ]


class RecordStore:
    """The metadata files under one state directory (blocking calls: run them in a thread)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def files(self, pool: str, name: str) -> VMFiles:
        for what, value in (("pool", pool), ("VM", name)):
            if not SAFE_NAME.fullmatch(value):
                raise PermanentProviderError(f"{what} name {value!r} cannot be a file name (use A-Z a-z 0-9 _ . -)")
        return VMFiles(self.state_dir / pool, name)

    def names(self, pool: str) -> list[str]:
        directory = self.state_dir / pool
        if not SAFE_NAME.fullmatch(pool) or not directory.is_dir():
            return []
        return sorted(path.stem for path in directory.glob("*.json") if SAFE_NAME.fullmatch(path.stem))

    def load(self, files: VMFiles) -> VMRecord | None:
        try:
            return VMRecord.model_validate_json(files.metadata.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            raise ProviderError(f"VM metadata {files.metadata} is unreadable: {exc}") from exc

    def create(self, files: VMFiles, record: VMRecord) -> None:
        """Write the first metadata of a VM; ProviderError when the name is taken."""
        files.directory.mkdir(parents=True, exist_ok=True)
        temporary = self._write_temporary(files, record)
        try:
            os.link(temporary, files.metadata)  # unlike a rename, a link never replaces an existing file
        except FileExistsError as exc:
            raise ProviderError(f"VM {record.name!r} already exists in pool {record.pool!r}") from exc
        finally:
            temporary.unlink(missing_ok=True)

    def save(self, files: VMFiles, record: VMRecord) -> None:
        os.replace(self._write_temporary(files, record), files.metadata)

    @staticmethod
    def _write_temporary(files: VMFiles, record: VMRecord) -> Path:
        fd, name = tempfile.mkstemp(dir=files.directory, prefix=f".{files.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(record.model_dump_json(indent=1))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return Path(name)

    @staticmethod
    def remove(files: VMFiles, record: VMRecord | None) -> None:
        """Delete every file of the VM, the metadata last; files already gone are fine."""
        for path in files.all_files(record):
            path.unlink(missing_ok=True)
