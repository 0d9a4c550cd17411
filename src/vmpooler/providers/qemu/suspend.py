"""Suspending a QEMU VM: its RAM and devices saved to a file in its directory and its process ended, so it
holds no CPU and no memory; resumed by starting the same command line with ``-incoming`` from that file."""

from __future__ import annotations

import asyncio
import shlex

from vmpooler.errors import ProviderError
from vmpooler.providers.localvm.records import VMFiles
from vmpooler.providers.qemu import memstate, qmp

POLL_SECONDS = 0.05


async def save(files: VMFiles, timeout: float) -> None:
    """Pause the guest and stream its RAM and devices to ``files.suspended`` (the disk is flushed with them).
    Written to a temporary name first: a file under the final name is always a complete state."""
    partial = files.suspended.with_suffix(".partial")
    async with qmp.session(files.qmp, timeout=timeout) as monitor:
        await monitor.execute("stop")
        await monitor.execute("migrate-set-parameters", {"max-bandwidth": memstate.SAVE_BANDWIDTH})
        await monitor.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(partial))}"})
        async with asyncio.timeout(timeout):
            while True:
                migration = await monitor.execute("query-migrate")
                status = migration.get("status")
                if status == "completed":
                    break
                if status in ("failed", "cancelled"):
                    await monitor.execute("cont")  # it runs on as before: the suspend did not happen
                    raise ProviderError(f"saving the VM's memory failed: {migration.get('error-desc', status)}")
                await asyncio.sleep(POLL_SECONDS)
    await asyncio.to_thread(partial.replace, files.suspended)


def resume_argv(argv: list[str], files: VMFiles) -> list[str]:
    """The VM's own command line, its devices unchanged (a restore needs the same layout), started from its
    saved state: QEMU 7.2 has no ``file:`` migration, so it reads the stream from a ``cat``."""
    incoming = f"exec:cat {shlex.quote(str(files.suspended))}"
    if "-incoming" in argv:
        at = argv.index("-incoming") + 1
        return [*argv[:at], incoming, *argv[at + 1 :]]
    before_qmp = argv.index("-qmp") if "-qmp" in argv else len(argv)
    return [*argv[:before_qmp], "-incoming", incoming, *argv[before_qmp:]]


__all__ = ["resume_argv", "save"]
