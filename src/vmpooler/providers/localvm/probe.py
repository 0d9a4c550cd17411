"""Readiness probes: does a service inside the guest answer at host:port?

A forwarded port (user-mode networking) accepts a connection before anything in the guest listens
and then closes it, so the ``ssh`` and ``http`` probes wait for the guest's own first words: an SSH
banner (``SSH-`` prefix) or an HTTP status line. ``tcp`` (a bare connect) is only meaningful where
nothing forwards the port, such as a bridged guest's own address.
"""

from __future__ import annotations

import asyncio
import contextlib

from vmpooler.providers.localvm.options import ReadyProbe

MAX_LINE = 1024


async def ssh_banner(host: str, port: int, timeout: float) -> str | None:
    """The server's identification line (``SSH-2.0-...``), or None when none arrives in time."""
    line = await _first_line(host, port, timeout, greeting=None)
    return line if line is not None and line.startswith("SSH-") else None


async def http_status(host: str, port: int, timeout: float) -> str | None:
    """The status line of the answer to ``GET /``, or None."""
    request = f"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: vmpooler-probe\r\n\r\n".encode()
    line = await _first_line(host, port, timeout, greeting=request)
    return line if line is not None and line.startswith("HTTP/") else None


async def tcp_open(host: str, port: int, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    await _close(writer)
    return True


async def answers(kind: ReadyProbe, host: str, port: int, timeout: float) -> bool:
    if kind == "ssh":
        return await ssh_banner(host, port, timeout) is not None
    if kind == "http":
        return await http_status(host, port, timeout) is not None
    return await tcp_open(host, port, timeout)


async def _first_line(host: str, port: int, timeout: float, greeting: bytes | None) -> str | None:
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE * 4)
            if greeting:
                writer.write(greeting)
                await writer.drain()
            line = await reader.readline()
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        if writer is not None:
            await _close(writer)
    return line[:MAX_LINE].decode(errors="replace").strip() or None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
