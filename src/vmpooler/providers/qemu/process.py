"""The QEMU process of one VM: launched as a daemon, found again by pid file, stopped politely then firmly.

A VM's process is recognised by its unique id on the command line (``/proc/<pid>/cmdline``), never
by its pid alone: after a host reboot or a long outage a pid may belong to another program. Those
checks read procfs and a tiny pid file, which never wait on a disk, so async callers make them inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.localvm.commands import run
from vmpooler.providers.localvm.records import VMFiles
from vmpooler.providers.qemu import qmp

LOG_LINES = 5
POLL_SECONDS = 0.1


async def launch(argv: list[str], files: VMFiles, timeout: float) -> int:
    """Start the VM (``argv`` daemonizes) and return its pid once QEMU has finished setting it up.

    QEMU's parent process exits only after the daemon has opened its devices, so a refused option,
    an unreadable image or a missing kernel shows as a non-zero exit: PermanentProviderError with
    the last lines QEMU wrote to the VM's log.
    """
    await asyncio.to_thread(_prepare, files)
    finished = await run(argv, timeout, check=False, cwd=files.directory, output_to=files.log)
    if finished.returncode != 0:
        tail = await asyncio.to_thread(log_tail, files.log)
        raise PermanentProviderError(f"qemu exited with status {finished.returncode}: {tail}")
    pid = await asyncio.to_thread(read_pid, files.pidfile)
    if pid is None:
        tail = await asyncio.to_thread(log_tail, files.log)
        raise ProviderError(f"qemu started but wrote no pid to {files.pidfile}: {tail}")
    return pid


def _prepare(files: VMFiles) -> None:
    """Clear a pid file an earlier launch left, and mark where this launch's messages begin in the log."""
    files.pidfile.unlink(missing_ok=True)
    with files.log.open("a") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} launching {files.name}\n")


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def is_ours(pid: int | None, uid: str) -> bool:
    """True while ``pid`` is alive and is the QEMU started with ``uid`` (a zombie has no cmdline)."""
    if pid is None or pid <= 0:
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return uid.encode() in arguments


def find(files: VMFiles, uid: str, recorded: int | None) -> int | None:
    """The VM's running process: the pid recorded in its metadata, else the one in its pid file."""
    for pid in (recorded, read_pid(files.pidfile)):
        if is_ours(pid, uid):
            return pid
    return None


async def stop(pid: int, uid: str, files: VMFiles, grace: float) -> None:
    """Ask QEMU to quit over QMP; after ``grace`` seconds SIGTERM, then SIGKILL. Returns once it is gone."""
    with contextlib.suppress(ProviderError):
        async with qmp.session(files.qmp, timeout=2.0) as monitor:
            await monitor.execute("quit", timeout=2.0)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if await wait_gone(pid, uid, grace):
            return
        if is_ours(pid, uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    if not await wait_gone(pid, uid, grace):
        raise ProviderError(f"qemu process {pid} of {files.name!r} survived SIGKILL")


async def wait_gone(pid: int, uid: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_ours(pid, uid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


def log_tail(log: Path, lines: int = LOG_LINES) -> str:
    """The last lines QEMU wrote since its latest launch, joined on one line for an error message."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    starts = [i for i, line in enumerate(text) if line.startswith("--- ")]
    this_launch = text[starts[-1] + 1 :] if starts else text
    last = [line.strip() for line in this_launch if line.strip()][-lines:]
    return " | ".join(last) or "(nothing in its log)"
