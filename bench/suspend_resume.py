"""The suspended tier's figure: a suspended qemu VM resumed to a reachable guest, against a cold boot of the same
image (results in BENCHMARKS.md).

Runs the qemu provider directly (no manager, no Redis: the figure is the provider's) on the test guest of
``tests/support/guest.py``. Cold: ``create_vm`` until the guest's banner answers through the forwarded port
(the provider's readiness probe, polled every 50 ms), one VM at a time, each destroyed before the next.
Resumed: one VM booted once, then suspended (RAM and devices to a file, its process ended) and resumed
``--cycles`` times; each sample is ``resume_vm`` until the probe answers. The suspend's own time and the
saved file's size are reported apart. KVM is used when it works, TCG otherwise; the table says which.
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/suspend_resume.py [--cold 3] [--cycles 10] [--memory-mb 256] [--json FILE]
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
from fast_clone import CACHE, POLL_SECONDS, READY_CAP_SECONDS, percentile, to_reachable
from vmpooler.domain import PoolTarget
from vmpooler.providers.localvm import accel
from vmpooler.providers.qemu import QemuOptions, QemuProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test guest's builder lives in tests/support
from tests.support.guest import build_guest, guest_key


@dataclass
class Timings:
    accelerator: str
    cold: list[float]
    resumed: list[float]
    suspended: list[float]
    #: bytes of the saved state (RAM the guest touched, and its devices)
    state_bytes: int


async def until_reachable(provider: QemuProvider, pool: PoolTarget, name: str, started: float) -> float:
    while not await provider.vm_ready(pool, name):
        if time.monotonic() - started > READY_CAP_SECONDS:
            raise RuntimeError(f"{name} was not reachable within {READY_CAP_SECONDS:.0f}s")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


async def measure(args: argparse.Namespace) -> Timings:
    guest = await asyncio.to_thread(build_guest, CACHE / f"guest-{guest_key()}")
    with tempfile.TemporaryDirectory(prefix="vmpooler-suspend-") as state:
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
        pool = PoolTarget("sus", str(guest.template_disk), {"clone_from": "boot"})
        cold = []
        for i in range(args.cold):
            cold.append((await to_reachable(provider, pool, f"cold-{i}"))[1])
            console.print(f"cold boot {i}: {cold[-1]:.2f} s")
        await provider.create_vm(pool, "sus-vm")
        await until_reachable(provider, pool, "sus-vm", time.monotonic())
        resumed, suspended, state_bytes = [], [], 0
        for i in range(args.cycles):
            started = time.monotonic()
            await provider.suspend_vm(pool, "sus-vm")
            suspended.append(time.monotonic() - started)
            state_bytes = (Path(state) / "sus" / "sus-vm.suspended").stat().st_size
            started = time.monotonic()
            await provider.resume_vm(pool, "sus-vm")
            resumed.append(await until_reachable(provider, pool, "sus-vm", started))
            console.print(f"cycle {i}: suspended in {suspended[-1]:.2f} s, resumed to reachable in {resumed[-1]:.2f} s")
        await provider.destroy_vm(pool, "sus-vm")
        return Timings(chosen, cold, resumed, suspended, state_bytes)


def report(timings: Timings, load: float) -> None:
    table = Table(title=f"to a reachable guest, one VM at a time ({timings.accelerator}; load average {load:.1f})")
    for column in ("step", "samples", "p50", "p95", "max"):
        table.add_column(column, justify="right")
    for label, values in (
        ("cold boot", timings.cold),
        ("resume (suspended → reachable)", timings.resumed),
        ("suspend (RAM to disk, process ended)", timings.suspended),
    ):
        table.add_row(
            label,
            str(len(values)),
            f"{percentile(values, 0.5):.2f} s",
            f"{percentile(values, 0.95):.2f} s",
            f"{max(values):.2f} s",
        )
    console.print(table)
    speedup = statistics.median(timings.cold) / statistics.median(timings.resumed)
    console.print(
        f"a resume is {speedup:.1f}x faster than a cold boot at p50; "
        f"the saved state is {timings.state_bytes / 2**20:.1f} MiB"
    )


def figures(timings: Timings) -> dict[str, object]:
    return {
        **asdict(timings),
        "cold_p50": percentile(timings.cold, 0.5),
        "cold_p95": percentile(timings.cold, 0.95),
        "resumed_p50": percentile(timings.resumed, 0.5),
        "resumed_p95": percentile(timings.resumed, 0.95),
        "suspended_p50": percentile(timings.suspended, 0.5),
        "speedup_p50": statistics.median(timings.cold) / statistics.median(timings.resumed),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--cold", type=int, default=3, help="cold boots timed (default 3)")
    parser.add_argument("--cycles", type=int, default=10, help="suspend and resume cycles timed (default 10)")
    parser.add_argument("--memory-mb", type=int, default=256, help="memory of the VMs (default 256)")
    args = parse_with_figures(parser, argv)
    if args.cold < 1 or args.cycles < 1:
        parser.error("--cold and --cycles must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("suspend_resume", args, lambda: run_async(measure(args)), report, figures)


if __name__ == "__main__":
    sys.exit(main())
