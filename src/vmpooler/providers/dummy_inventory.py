"""The dummy provider's inventory: in memory, or shared through a file by every process naming it.

A file-backed inventory is two files: ``<filename>``, a JSON snapshot ``{"generation": n, "pools":
{pool: {vm: record}}}``, and ``<filename>.journal``, whose first line is ``{"generation": n}`` and each
further line one change, ``{"pool": p, "name": vm, "vm": record or null}``, appended. A change costs
one appended line (rewriting the whole file made each clone O(VMs)); each process keeps the inventory
in memory and reads only the lines added since its last look. When the journal holds more lines than
the inventory has VMs (plus ``COMPACT_AFTER``), the next writer folds it into a new snapshot and starts
a new journal of the next generation, so the work stays O(1) per change on average.

A file in the original vmpooler's form (``dummy_original``: its dummy provider may share the file) has
no journal: the original reads the whole file, so each change rewrites it whole in that form, as before.

Changes are made under ``fcntl.flock`` on ``<filename>.lock`` (exclusive), reads under a shared lock.
A process killed mid-append leaves a torn last line: readers skip it, and the next writer ends it with
a newline first. Snapshot and journal are each replaced whole (a temporary file, then ``os.replace``);
a crash between the two leaves a newer snapshot beside the older journal, whose lines, replayed on it,
change nothing (each line sets a VM's whole record). ``read_inventory(path)`` reads both for other
programs (tests, operators); no fsync: the files must survive a killed process, not a power cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers import dummy_original

__all__ = ["Inventory", "InventoryStore", "Record", "read_inventory"]

T = TypeVar("T")
Record = dict[str, Any]
Inventory = dict[str, dict[str, Record]]  # pool name -> VM name -> record

#: journal lines tolerated beyond the number of VMs before it is folded into the snapshot
COMPACT_AFTER = 1000


def read_inventory(path: Path) -> Inventory:
    """The inventory a file-backed dummy provider keeps at ``path`` (snapshot and journal), read now."""
    return _FileInventory(path).snapshot()


class InventoryStore:
    """The inventory in memory, or in a file every process naming it shares (see the module docstring).

    ``update(pool, name, change)`` applies ``change`` to the whole inventory but may touch only that
    VM's record: that record alone is written. ``change`` must raise before it mutates anything.
    """

    def __init__(self, path: Path | None) -> None:
        self._file = _FileInventory(path) if path is not None else None
        self._memory: Inventory = {}
        self._lock = asyncio.Lock()  # one change at a time within this process

    async def names(self, pool: str) -> list[str]:
        return sorted(await self._look(lambda inventory: list(inventory.get(pool, {}))))

    async def record(self, pool: str, name: str) -> Record | None:
        """A copy of one VM's record, None when there is no such VM."""
        return await self._look(lambda inventory: _copy(inventory.get(pool, {}).get(name)))

    async def update(self, pool: str, name: str, change: Callable[[Inventory], T]) -> T:
        async with self._lock:
            if self._file is None:
                return change(self._memory)
            return await asyncio.to_thread(self._file.change, pool, name, change)

    def snapshot(self) -> Inventory:
        """A copy of the whole inventory (blocking when file-backed; for tests and the CLI)."""
        return copy.deepcopy(self._memory) if self._file is None else self._file.snapshot()

    async def _look(self, read: Callable[[Inventory], T]) -> T:
        if self._file is None:
            return read(self._memory)
        return await asyncio.to_thread(self._file.look, read)


def _copy(record: Record | None) -> Record | None:
    # a record's values are scalars or flat lists and dicts of them (snapshots, disks, tags): a copy
    # one level deep is a deep copy, at a tenth of copy.deepcopy's cost (4 % of a filling manager's CPU)
    return None if record is None else {key: copy.copy(value) for key, value in record.items()}


class _FileInventory:
    """The file-backed inventory of one process: its copy in memory and how far it has read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = path.with_name(path.name + ".journal")
        self._lock_path = path.with_name(path.name + ".lock")
        self._mutex = threading.Lock()  # the copy in memory, between this process's threads
        self._inventory: Inventory = {}
        self._generation: int | None = None  # of the journal read; None: there was none
        self._offset = 0  # bytes of the journal applied (whole lines only)
        self._lines = 0  # change lines in the journal
        #: the file is the original vmpooler's (dummy_original), shared with it: no journal, written whole
        self.original_format = False

    def look(self, read: Callable[[Inventory], T]) -> T:
        with self._locked(fcntl.LOCK_SH):
            self._catch_up()
            return read(self._inventory)

    def snapshot(self) -> Inventory:
        return self.look(copy.deepcopy)

    def change(self, pool: str, name: str, change: Callable[[Inventory], T]) -> T:
        with self._locked(fcntl.LOCK_EX):
            self._catch_up()
            if self.original_format:
                # the original vmpooler's dummy reads the whole file: it is rewritten whole, in its form
                result = change(self._inventory)
                _replace(self.path, json.dumps(dummy_original.to_original(self._inventory), indent=1, sort_keys=True))
                return result
            if self._generation is None:
                self._compact()  # the first change here: a snapshot and a journal to append to
            result = change(self._inventory)
            self._append({"pool": pool, "name": name, "vm": self._inventory.get(pool, {}).get(name)})
            if self._lines > COMPACT_AFTER + sum(len(v) for v in self._inventory.values()):
                self._compact()
            return result

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        try:
            with self._mutex, open(self._lock_path, "a") as lock:
                fcntl.flock(lock, mode)  # released when the file is closed, or the process dies
                yield
        except OSError as exc:
            raise ProviderError(f"dummy inventory {self.path}: {exc}") from exc

    def _catch_up(self) -> None:
        """Apply the journal lines written since this process last looked (all of it after a compaction)."""
        try:
            with open(self.journal, "rb") as journal:
                header = journal.readline()
                generation = _generation_of(header)
                if generation != self._generation:
                    self._inventory = self._read_snapshot()[1]
                    self._generation, self._offset, self._lines = generation, len(header), 0
                journal.seek(self._offset)
                tail = journal.read()
        except FileNotFoundError:
            # no change made since the file was written as one JSON document (older versions did)
            self._inventory, self._generation = self._read_snapshot()[1], None
            self._offset = self._lines = 0
            return
        complete = tail.rfind(b"\n") + 1  # a torn last line waits (or is ended by the next writer)
        for line in tail[:complete].splitlines():
            self._lines += 1
            _apply(self._inventory, line)
        self._offset += complete

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
        with open(self.journal, "ab") as journal:
            if journal.tell() > self._offset:
                line = b"\n" + line  # end a line torn by a killed writer, so it stays one bad line
            journal.write(line)
            self._offset = journal.tell()
        self._lines += 1

    def _compact(self) -> None:
        generation = max(self._generation or 0, self._read_snapshot()[0]) + 1
        _replace(self.path, json.dumps({"generation": generation, "pools": self._inventory}, indent=1, sort_keys=True))
        self._start_journal(generation)

    def _start_journal(self, generation: int) -> None:
        header = json.dumps({"generation": generation}) + "\n"
        _replace(self.journal, header)
        self._generation, self._offset, self._lines = generation, len(header), 0

    def _read_snapshot(self) -> tuple[int, Inventory]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return 0, {}
        try:
            data = json.loads(text) if text.strip() else {"pools": {}}
        except ValueError:
            data = _original_yaml(self.path, text)
        if dummy_original.is_original(data):
            self.original_format = True
            return 0, dummy_original.from_original(data)
        if not isinstance(data, dict) or not isinstance(data.get("pools"), dict):
            raise PermanentProviderError(f"dummy inventory {self.path} has no 'pools' mapping")
        return int(data.get("generation", 0)), data["pools"]


def _original_yaml(path: Path, text: str) -> Any:
    """The original vmpooler's dummy writes its inventory as YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PermanentProviderError(f"dummy inventory {path} is neither JSON nor YAML: {exc}") from exc


def _generation_of(header: bytes) -> int:
    try:
        return int(json.loads(header)["generation"])
    except (ValueError, KeyError, TypeError):
        return -1  # not written by us: its lines are still read


def _apply(inventory: Inventory, line: bytes) -> None:
    try:
        entry = json.loads(line)
        pool, name, record = entry["pool"], entry["name"], entry["vm"]
    except (ValueError, KeyError, TypeError):
        return  # a line torn by a killed writer
    if record is None:
        vms = inventory.get(pool, {})
        vms.pop(name, None)
        if not vms:
            inventory.pop(pool, None)
    else:
        inventory.setdefault(pool, {})[name] = record


def _replace(path: Path, text: str) -> None:
    # readers see the old file or the new one, never half
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
