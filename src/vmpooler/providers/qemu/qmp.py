"""A minimal async QMP client: read the greeting, negotiate capabilities, execute commands, each bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from vmpooler.errors import ProviderError, ProviderTimeout

#: sun_path holds 108 bytes; a longer socket path is reached through a directory descriptor
UNIX_PATH_MAX = 107
#: query-block and friends answer in one line that can be long
LINE_LIMIT = 4 * 1024 * 1024


class QMPCommandError(ProviderError):
    """QEMU refused a command; ``error_class`` is QMP's (``GenericError``, ``DeviceNotFound``, ...)."""

    def __init__(self, command: str, error_class: str, description: str) -> None:
        self.error_class = error_class
        super().__init__(f"QMP {command}: {description} ({error_class})")


class QMPClient:
    """One negotiated QMP session over a unix socket; use ``session()`` to open and close it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: Path) -> None:
        self._reader = reader
        self._writer = writer
        self._path = path
        self._ids = itertools.count(1)
        #: asynchronous events seen while waiting for replies (SHUTDOWN, DEVICE_DELETED, ...)
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, path: Path, timeout: float = 5.0) -> QMPClient:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await open_unix(path)
                client = cls(reader, writer, path)
                greeting = await client._read()
                if "QMP" not in greeting:
                    raise ProviderError(f"QMP {path}: unexpected greeting {greeting!r}")
                await client._command("qmp_capabilities", None)
        except TimeoutError as exc:
            raise ProviderTimeout(f"QMP {path}: no greeting within {timeout:.0f}s") from exc
        except (OSError, ValueError) as exc:
            raise ProviderError(f"QMP {path}: cannot connect: {exc}") from exc
        return client

    async def execute(self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        """The command's ``return`` value; QMPCommandError when QEMU refuses it."""
        try:
            async with asyncio.timeout(timeout):
                return await self._command(command, arguments)
        except TimeoutError as exc:
            raise ProviderTimeout(f"QMP {command}: no answer within {timeout:.0f}s") from exc
        except (OSError, ValueError) as exc:
            raise ProviderError(f"QMP {command}: connection lost: {exc}") from exc

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _command(self, command: str, arguments: dict[str, Any] | None) -> Any:
        request_id = next(self._ids)
        message: dict[str, Any] = {"execute": command, "id": request_id}
        if arguments:
            message["arguments"] = arguments
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()
        while True:
            reply = await self._read()
            if "event" in reply:
                self.events.append(reply)
            elif reply.get("id") == request_id:
                if "error" in reply:
                    error = reply["error"]
                    raise QMPCommandError(command, error.get("class", "?"), error.get("desc", str(error)))
                return reply.get("return")

    async def _read(self) -> dict[str, Any]:
        line = await self._reader.readline()
        if not line:
            raise ConnectionResetError(f"QEMU closed {self._path}")
        reply: dict[str, Any] = json.loads(line)
        return reply


@contextlib.asynccontextmanager
async def session(path: Path, timeout: float = 5.0) -> AsyncIterator[QMPClient]:
    client = await QMPClient.connect(path, timeout)
    try:
        yield client
    finally:
        await client.close()


async def open_unix(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the unix socket at ``path``, however long the path."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return await asyncio.open_unix_connection(path, limit=LINE_LIMIT)
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{directory}/{path.name}", limit=LINE_LIMIT)
    finally:
        os.close(directory)
