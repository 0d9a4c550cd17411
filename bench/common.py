"""What every benchmark shares: the processes it starts (redis-server, ``vmpooler``), /proc readings, the
machine header, the guarded entry point and the ``--json`` figures file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
import yaml
from rich.console import Console

import vmpooler
from vmpooler.store.embedded import free_port, redis_server_binary

# a log or a pipe gets tables 120 wide (rich's default of 80 would wrap them), unless COLUMNS says otherwise
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120)
T = TypeVar("T")
R = TypeVar("R")


# ---- child processes -----------------------------------------------------------------------------


class Children:
    """Every process the benchmark starts; leaving the ``with`` block stops each one still running."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            self.stop(proc)

    def start(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # output to a file, not a pipe: a pipe nobody reads fills up and stalls the server
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        self._procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], wait: float = 10.0) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until_up(proc: subprocess.Popen[bytes], log: Path, probe: str | int, timeout: float = 20.0) -> None:
    """Wait for ``probe`` (a URL answering 200, or a port accepting connections); fail if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if isinstance(probe, int):
                socket.create_connection(("127.0.0.1", probe), timeout=0.2).close()
                return
            if httpx.get(probe, timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered at {probe} within {timeout:.0f}s (log: {log})")


def start_redis(children: Children, workdir: Path) -> tuple[int, int]:
    """A throw-away redis-server (no persistence); returns (port, pid)."""
    port = free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    log = workdir / "redis.log"
    proc = children.start(args, log)
    wait_until_up(proc, log, port)
    return port, proc.pid


def write_config(path: Path, redis_port: int, pools: Sequence[tuple[str, int]], **sections: Any) -> Path:
    """A vmpooler YAML naming the private Redis and ``pools`` (name, size), each its own template."""
    raw: dict[str, Any] = {
        "redis": {"server": "127.0.0.1", "port": redis_port},
        "config": {"site_name": "bench", **sections.pop("config", {})},
        "pools": [{"name": name, "template": name, "size": size} for name, size in pools],
        **sections,
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def start_vmpooler(
    children: Children, command: str, config: Path, workdir: Path, timeout: float = 60.0
) -> tuple[str, subprocess.Popen[bytes]]:
    """``vmpooler <command>`` (``api`` or ``serve``) on a free loopback port; returns (base URL, process)."""
    script = Path(sys.executable).parent / "vmpooler"
    if not script.exists():
        raise RuntimeError(f"no {script}: run `make install` first")
    # the original's environment overrides (REDIS_SERVER, ...) must not point the service elsewhere
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "VMPOOLER_"))}
    port = free_port()
    args = [str(script), command, "-c", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--state-dir", str(workdir / "state")]
    log = workdir / f"{command}-{config.stem}.log"
    proc = children.start(args, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, log, f"{url}/api/v3/vm", timeout=timeout)
    return url, proc


# ---- /proc ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); NaN where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


def memory_mib(pid: int | str = "self") -> dict[str, float]:
    """``VmRSS`` (resident now) and ``VmHWM`` (the resident peak) of a process, in MiB."""
    found = {"rss_mib": math.nan, "hwm_mib": math.nan}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found["rss_mib" if name == "VmRSS" else "hwm_mib"] = int(value.split()[0]) / 1024
    return found


def load_average() -> float:
    """The 1-minute load average: on a shared machine, how much the figures may be disturbed."""
    return os.getloadavg()[0]


# ---- reporting -----------------------------------------------------------------------------------


def numbers(text: str) -> tuple[int, ...]:
    """``--sizes 30,1000``: a comma-separated list of integers."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]MISS[/]"


def machine() -> dict[str, Any]:
    """Where the figures come from: CPUs, Python, and the revision of the vmpooler under test."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    source = Path(vmpooler.__file__).parent
    try:
        git = ["git", "-C", str(source), "describe", "--always", "--dirty"]
        revision = subprocess.run(git, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = "unknown (not a git checkout)"
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "vmpooler": f"{source} at {revision}",
        "revision": revision,
    }


def without_nan(value: Any) -> Any:
    """``value`` with every NaN as None: strict JSON has no NaN (jq and browsers reject it)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(v) for v in value]
    return value


def write_json(path: Path | None, benchmark: str, settings: Mapping[str, Any], results: Any, load: float) -> None:
    """The figures of one benchmark, for ``run_all.py`` and for comparing runs."""
    if path is None:
        return
    figures = {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load,
        "load_after": load_average(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "results": results,
    }
    path.write_text(json.dumps(without_nan(figures), indent=1) + "\n")
    console.print(f"figures in {path}", highlight=False)


# ---- entry point ---------------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop  # the server runs on uvloop too; it keeps the load generator's share of the CPU small
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM stops the run the way Ctrl-C does: children stopped, temporary files gone."""
    signal.signal(signal.SIGTERM, _interrupt)


def guarded_main(work: Callable[[dict[str, Any]], object]) -> int:
    """Every benchmark's entry point: print the machine, run ``work(machine)``, and turn Ctrl-C,
    SIGTERM and a failed start into an exit code (every child process is stopped either way)."""
    stop_on_sigterm()
    info = machine()
    console.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {info['nproc']} CPUs ({info['cpu']}), load {load_average():.2f}",
        highlight=False,
    )
    console.print(f"Python {info['python']}, vmpooler from {info['vmpooler']}", highlight=False)
    try:
        work(info)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; every process it started is stopped")
        return 130
    except RuntimeError as exc:
        console.print(f"[red]the benchmark could not run:[/] {exc}", highlight=False)
        return 1
    return 0


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's parser, described by the first paragraph of its module docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])


def parse_with_figures(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with the benchmark's own flags and, last, the ``--json FILE`` every benchmark has."""
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures to FILE")
    return parser.parse_args(argv)


def benchmark_main(
    name: str,
    args: argparse.Namespace,
    run: Callable[[], R],
    report: Callable[[R, float], object],
    figures: Callable[[R], Any] = lambda result: result,
) -> int:
    """Every benchmark's ``main()`` after parsing: run it, report (given the load before), write ``--json``."""

    def work(_machine: dict[str, Any]) -> None:
        load = load_average()
        result = run()
        report(result, load)
        write_json(args.json, name, vars(args), figures(result), load)

    return guarded_main(work)
