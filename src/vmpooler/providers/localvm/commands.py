"""Runs host tools (qemu-img, qemu) as child processes, bounded in time, their failures as ProviderErrors."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def require_binary(binary: str) -> str:
    """The full path of ``binary``; PermanentProviderError when it is not installed."""
    found = shutil.which(binary)
    if found is None:
        raise PermanentProviderError(f"{binary} is not installed (not found on PATH)")
    return found


async def run(
    argv: list[str], timeout: float, *, check: bool = True, cwd: Path | None = None, output_to: Path | None = None
) -> Finished:
    """Run ``argv`` to completion; kill it after ``timeout`` seconds (ProviderTimeout).

    With ``check`` a non-zero exit raises ProviderError carrying the tool's own message. With
    ``output_to`` both outputs are appended to that file instead of being captured: a process
    that daemonizes hands them to its daemon, and a pipe would only reach end-of-file when the
    daemon closes it.
    """
    try:
        with contextlib.ExitStack() as files:
            output: int | IO[bytes] = (
                files.enter_context(output_to.open("ab")) if output_to else asyncio.subprocess.PIPE
            )
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output
            )
    except FileNotFoundError as exc:
        raise PermanentProviderError(f"{argv[0]} is not installed: {exc}") from exc
    except OSError as exc:
        raise ProviderError(f"cannot run {argv[0]}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    except TimeoutError as exc:
        raise ProviderTimeout(f"{Path(argv[0]).name} did not finish within {timeout:.0f}s") from exc
    finally:
        if process.returncode is None:  # timed out, or the caller was cancelled: no tool outlives its call
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    finished = Finished(
        process.returncode or 0, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
    )
    if check and finished.returncode != 0:
        message = (finished.stderr or finished.stdout).strip() or f"exit status {finished.returncode}"
        raise ProviderError(f"{Path(argv[0]).name} failed: {message}")
    return finished
