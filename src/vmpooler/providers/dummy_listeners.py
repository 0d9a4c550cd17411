"""What a hand-out check of a dummy VM reaches: one loopback listener per running VM (``listen: true``).

A healthy VM's listener answers like the services a check asks for: an SSH banner to a client that
sends its own (or says nothing for a moment), ``200 OK`` to an HTTP request. A *mute* VM accepts
connections and never says a word (its port forward works, its service hangs); a *dead* one has no
listener at all. The listeners live in the process that cloned the VM: the check runs over real
sockets, exactly as against a real VM's forwarded port, so the API needs no provider to check one.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum

__all__ = ["Health", "Listeners"]

BANNER = b"SSH-2.0-vmpooler_dummy\r\n"
HTTP_OK = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
#: a client that says nothing this long is answered as an SSH client (SSH servers speak first)
QUIET_CLIENT_SECONDS = 0.2
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"OPTIONS ")


class Health(StrEnum):
    HEALTHY = "healthy"
    MUTE = "mute"  # the port answers, the service does not


class Listeners:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._servers: dict[str, asyncio.Server] = {}

    async def open(self, name: str, health: Health) -> int:
        """Start (or keep) the VM's listener; returns its port."""
        server = self._servers.get(name)
        if server is None:
            handler = _serve_healthy if health is Health.HEALTHY else _serve_mute
            server = await asyncio.start_server(handler, self.host, 0)
            self._servers[name] = server
        return int(server.sockets[0].getsockname()[1])

    def close(self, name: str) -> None:
        """The VM dies or is destroyed: its port refuses connections from now on."""
        server = self._servers.pop(name, None)
        if server is not None:
            server.close()  # connections already open end when their client gives up (a check's budget)

    def close_all(self) -> None:
        for name in list(self._servers):
            self.close(name)

    def __contains__(self, name: str) -> bool:
        return name in self._servers


async def _serve_healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        try:
            first = await asyncio.wait_for(reader.readline(), QUIET_CLIENT_SECONDS)
        except TimeoutError:
            first = b""
        if first.startswith(HTTP_METHODS):
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            writer.write(HTTP_OK)
        else:
            writer.write(BANNER)
        await writer.drain()
    except (OSError, TimeoutError, ValueError):
        pass
    finally:
        await _close(writer)


async def _serve_mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(4096):
            pass
    except OSError:
        pass
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
