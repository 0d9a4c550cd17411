"""One hand-out check over the network: does the service on the VM answer within the budget?

The API runs it itself, to the address the provider recorded for the VM (``ip``: an address, or
``host:port`` where the provider forwards the service to a host port, as qemu's user networking and the
dummy provider's listeners do). A forwarded port accepts a connection even when nothing inside answers,
so ``ssh`` and ``http`` wait for the service's own first words; ``tcp`` only proves the port accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from vmpooler.config.handout import HandoutCheck

MAX_LINE = 1024
#: lines an SSH server may send before its banner (RFC 4253 §4.2 allows some)
MAX_PRE_BANNER_LINES = 5
#: sent first, as any SSH client does: a server that reads before writing (the dummy's) answers at once
CLIENT_BANNER = b"SSH-2.0-vmpooler_handout_check\r\n"


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, or a bare host (then ``default_port``)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return address, default_port


async def probe(check: HandoutCheck, address: str, hostname: str) -> str | None:
    """None when the VM passed ``check``, else why it failed. ``address`` is the VM's recorded address
    (may be empty: then ``hostname`` is used), ``hostname`` its FQDN (or short name)."""
    budget = check.budget_ms / 1000
    try:
        async with asyncio.timeout(budget):
            if check.tcp is not None:
                return await _tcp(*split_address(address or hostname, check.tcp))
            if check.ssh is not None:
                return await _ssh(*split_address(address or hostname, check.ssh))
            return await _http(_url(check.http or "/", address or hostname, hostname))
    except TimeoutError:
        return f"no answer within {check.budget_ms} ms"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"[:300]


def _url(http: str, address: str, hostname: str) -> str:
    if http.startswith("/"):
        host, port = split_address(address, 80)
        return f"http://{_bracketed(host)}:{port}{http}"
    return http.replace("{hostname}", hostname).replace("{address}", address)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _tcp(host: str, port: int) -> str | None:
    _, writer = await asyncio.open_connection(host, port)
    await _close(writer)
    return None


async def _ssh(host: str, port: int) -> str | None:
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE * 4)
    try:
        writer.write(CLIENT_BANNER)
        await writer.drain()
        for _ in range(MAX_PRE_BANNER_LINES):
            line = await reader.readline()
            if not line:
                return "the port closed without an SSH banner"
            if line.startswith(b"SSH-"):
                return None
        return "no SSH banner in the first lines"
    finally:
        await _close(writer)


async def _http(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) URL: {url[:200]}"
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    # a VM's certificate is usually its own self-signed one: the check asks whether the service answers
    # (liveness), it sends nothing secret and believes nothing it reads
    context = ssl.create_default_context() if secure else None
    if context is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # nosec B501
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context, limit=MAX_LINE * 4)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = (
            f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: vmpooler-handout-check\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status = (await reader.readline())[:MAX_LINE].decode(errors="replace").split()
    finally:
        await _close(writer)
    if len(status) < 2 or not status[0].startswith("HTTP/") or not status[1].isdigit():
        return "no HTTP answer"
    code = int(status[1])
    return None if 200 <= code < 400 else f"HTTP {code}"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
