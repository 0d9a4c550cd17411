"""A clone restored from a saved memory state is told who it is now, over a virtio-serial agent channel.

Restored RAM holds the template's identity: its hostname, SSH host keys, the guest's copy of its MAC
and the state of its random number generator. The clone's QEMU has a ``vmgenid`` device whose id is
new in every process, so a Linux guest (5.18+) reseeds its RNG the moment it runs; the agent in the
guest then takes the name, the MAC and fresh host entropy from the ``thaw`` line written here, makes
new host keys, and answers ``thawed <hostname> <mac>``. docs/fast-clones.md says what a real image needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

from vmpooler.errors import ProviderError, ProviderTimeout
from vmpooler.providers.localvm.records import VMFiles
from vmpooler.providers.qemu import qmp

#: the name of the guest's port (``/sys/class/virtio-ports/*/name``)
AGENT_PORT = "org.vmpooler.agent"
#: bytes of host entropy a clone mixes into its pool
ENTROPY_BYTES = 64
POLL_SECONDS = 0.05


def devices(files: VMFiles) -> tuple[str, ...]:
    """The devices a restorable VM has, the template and every clone alike (a restore needs the same layout).

    The socket is named relative to the VM's directory, like the QMP socket (sun_path is short).
    """
    return (
        "-device",
        "vmgenid",
        "-device",
        "virtio-serial-pci,id=agentbus",
        "-chardev",
        f"socket,id=agent,path={files.agent.name},server=on,wait=off",
        "-device",
        f"virtserialport,bus=agentbus.0,chardev=agent,name={AGENT_PORT}",
    )


async def wait_running(files: VMFiles, timeout: float) -> None:
    """Return once the incoming memory state is loaded and the VM runs (resumed here); ProviderError when the
    load failed."""
    deadline = time.monotonic() + timeout
    async with qmp.session(files.qmp, timeout=timeout) as monitor:
        while True:
            status = (await monitor.execute("query-status")).get("status")
            if status == "running":
                return
            if status == "paused" and (await monitor.execute("query-migrate")).get("status") == "completed":
                # the template was paused when it was saved, and a restored VM keeps the runstate it was saved in
                await monitor.execute("cont")
                continue
            if status not in ("inmigrate", "prelaunch", "restore-vm", "finish-migrate"):
                migration = await monitor.execute("query-migrate")
                raise ProviderError(
                    f"restoring the saved state left the VM {status}: {migration.get('error-desc', '')}"
                )
            if time.monotonic() >= deadline:
                raise ProviderTimeout(f"the saved memory state was not loaded within {timeout:.0f}s")
            await asyncio.sleep(POLL_SECONDS)


class AgentChannel:
    """The host's end of a VM's agent port (see ``channel``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send_thaw(self, hostname: str, mac: str) -> None:
        """Write the clone's identity and fresh host entropy; QEMU holds it until the guest reads."""
        entropy = secrets.token_hex(ENTROPY_BYTES)
        self._writer.write(f"thaw {hostname} {mac} {entropy}\n".encode())
        try:
            await self._writer.drain()
        except OSError as exc:
            raise ProviderError(f"the guest agent's channel failed: {exc}") from exc

    async def answer(self, timeout: float) -> str:
        """The agent's ``thawed <hostname> <mac>``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await self._reader.readline()).decode(errors="replace").strip()
                    if not line:
                        raise ProviderError("the guest agent closed its channel without answering")
                    if line.startswith("thawed "):
                        return line
        except TimeoutError as exc:
            raise ProviderTimeout(f"the guest agent did not answer the thaw within {timeout:.0f}s") from exc
        except OSError as exc:
            raise ProviderError(f"the guest agent's channel failed: {exc}") from exc


@contextlib.asynccontextmanager
async def channel(files: VMFiles, timeout: float) -> AsyncIterator[AgentChannel]:
    """Connect to the VM's agent port. Connected while the template is saved, and again before a clone's
    saved state is loaded, the port never looks closed to the guest: its agent, saved blocked in a read,
    reads the thaw line the moment the clone runs (otherwise it notices a host within its 0.2 s poll)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await qmp.open_unix(files.agent)
    except TimeoutError as exc:
        raise ProviderTimeout(f"cannot reach the guest agent at {files.agent} within {timeout:.0f}s") from exc
    except OSError as exc:
        raise ProviderError(f"cannot reach the guest agent at {files.agent}: {exc}") from exc
    try:
        yield AgentChannel(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


__all__ = ["AGENT_PORT", "AgentChannel", "channel", "devices", "wait_running"]
