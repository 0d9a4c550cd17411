"""Restored vs booted local VMs: time from a clone request to a reachable guest, ``clone_from: memory`` against
a cold boot of the same image (results in BENCHMARKS.md).

Runs the qemu provider directly (no manager, no Redis: the figure is the provider's) on the test guest of
``tests/support/guest.py``. A cold VM is created with ``clone_from: boot``; a restored one with
``clone_from: memory``, from a state saved once at the start (its build time is reported apart). Each
figure is one VM at a time, from ``create_vm`` until the guest's SSH-style banner answers through the
forwarded port (the provider's own readiness probe, polled every 50 ms), so it includes the overlay,
QEMU's start, loading the memory state and the thaw. Each VM is destroyed before the next starts. KVM is
used when it works, TCG otherwise; the table says which. A benchmark, not a test: it exits 0 whatever
the figures, 1 when it could not run.

    .venv/bin/python bench/fast_clone.py [--cold 3] [--restored 10] [--memory-mb 256] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from common import argument_parser, benchmark_main, console, parse_with_figures, run_async
from vmpooler.domain import PoolTarget
from vmpooler.providers.localvm import accel
from vmpooler.providers.qemu import QemuOptions, QemuProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test guest's builder lives in tests/support
from tests.support.guest import build_guest, guest_key

CACHE = Path.home() / ".cache" / "vmpooler-tests"
POLL_SECONDS = 0.05
READY_CAP_SECONDS = 300.0


@dataclass
class Timings:
    accelerator: str
    cold: list[float]
    restored: list[float]
    #: the restored VMs' create_vm alone (QEMU start, state load, thaw), without the probe
    restored_create: list[float]
    state_build: float


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def to_reachable(provider: QemuProvider, pool: PoolTarget, name: str) -> tuple[float, float]:
    """Seconds from the request to create_vm's return, and to the first answered probe."""
    started = time.monotonic()
    await provider.create_vm(pool, name)
    created = time.monotonic() - started
    while not await provider.vm_ready(pool, name):
        if time.monotonic() - started > READY_CAP_SECONDS:
            raise RuntimeError(f"{name} was not reachable within {READY_CAP_SECONDS:.0f}s")
        await asyncio.sleep(POLL_SECONDS)
    reachable = time.monotonic() - started
    await provider.destroy_vm(pool, name)
    return created, reachable


async def measure(args: argparse.Namespace) -> Timings:
    guest = await asyncio.to_thread(build_guest, CACHE / f"guest-{guest_key()}")
    with tempfile.TemporaryDirectory(prefix="vmpooler-fast-clone-") as state:
        provider = QemuProvider(
            "qemu",
            QemuOptions(
                state_dir=state,
                memory_mb=args.memory_mb,
                kernel=str(guest.kernel),
                initrd=str(guest.initrd),
                shutdown_grace=5,
            ),
        )
        chosen = await accel.choose("auto", "qemu-system-x86_64")
        cold_pool = PoolTarget("cold", str(guest.template_disk), {"clone_from": "boot"})
        fast_pool = PoolTarget("fast", str(guest.template_disk), {"clone_from": "memory"})
        cold = []
        for i in range(args.cold):
            cold.append((await to_reachable(provider, cold_pool, f"cold-{i}"))[1])
            console.print(f"cold boot {i}: {cold[-1]:.2f} s")
        # the first restore builds the state: its template boot is timed on its own, and it is not a sample
        started = time.monotonic()
        await to_reachable(provider, fast_pool, "fast-first")
        state_build = time.monotonic() - started
        console.print(f"state built (and one clone restored) in {state_build:.1f} s")
        restored, restored_create = [], []
        for i in range(args.restored):
            created, reachable = await to_reachable(provider, fast_pool, f"fast-{i}")
            restored.append(reachable)
            restored_create.append(created)
        return Timings(chosen, cold, restored, restored_create, state_build)


def report(timings: Timings, load: float) -> None:
    table = Table(title=f"request → reachable, one VM at a time ({timings.accelerator}; load average {load:.1f})")
    for column in ("start", "VMs", "p50", "p95", "max"):
        table.add_column(column, justify="right")
    for label, values in (
        ("cold boot", timings.cold),
        ("restored", timings.restored),
        ("restored: create_vm only", timings.restored_create),
    ):
        table.add_row(
            label,
            str(len(values)),
            f"{percentile(values, 0.5):.2f} s",
            f"{percentile(values, 0.95):.2f} s",
            f"{max(values):.2f} s",
        )
    console.print(table)
    speedup = statistics.median(timings.cold) / statistics.median(timings.restored)
    console.print(f"restored is {speedup:.1f}x faster at p50; saving the state took {timings.state_build:.1f} s once")


def figures(timings: Timings) -> dict[str, object]:
    return {
        **asdict(timings),
        "cold_p50": percentile(timings.cold, 0.5),
        "cold_p95": percentile(timings.cold, 0.95),
        "restored_p50": percentile(timings.restored, 0.5),
        "restored_p95": percentile(timings.restored, 0.95),
        "speedup_p50": statistics.median(timings.cold) / statistics.median(timings.restored),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--cold", type=int, default=3, help="cold boots timed (default 3)")
    parser.add_argument("--restored", type=int, default=10, help="restored clones timed (default 10)")
    parser.add_argument("--memory-mb", type=int, default=256, help="memory of each VM (default 256)")
    args = parse_with_figures(parser, argv)
    if args.cold < 1 or args.restored < 1:
        parser.error("--cold and --restored must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("fast_clone", args, lambda: run_async(measure(args)), report, figures)


if __name__ == "__main__":
    sys.exit(main())
