"""Real VMs on this host: how fast the pool manager fills a pool through the qemu or the libvirt provider
(results in BENCHMARKS.md).

Starts a private redis-server and runs ``Manager.run()`` in process, with its production cadence, over
one empty pool of the qemu provider, for each pool size in ``--sizes`` (1, 3 and 6). Every VM boots
the test guest of ``tests/support/guest.py`` (a Debian kernel and a busybox initramfs, built once and
cached in ~/.cache/vmpooler-tests) and is ready when its SSH-style banner answers through the
forwarded port. Reports, per size: the time from each clone request (the VM's pending record) to its
ready record, the time until the whole pool is ready and the resulting VMs per minute, and the peak
resident memory of each VM's QEMU process (``VmHWM``). KVM is used when it works, TCG otherwise; the
table says which. With ``--provider libvirt`` the VMs are libvirt domains, on the libvirtd at ``--uri``
or, by default, on a private one started as the tests start theirs (tests/support/fixtures/libvirtd.py).
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/local_vms.py [--provider qemu|libvirt] [--uri URI] [--sizes 1,3,6] [--memory-mb 256]
                                        [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    memory_mib,
    parse_with_figures,
    run_async,
    start_redis,
)
from vmpooler.config import parse_settings
from vmpooler.domain import PoolTarget
from vmpooler.manager.loop import Manager
from vmpooler.providers.base import Provider
from vmpooler.providers.localvm import accel
from vmpooler.providers.localvm.records import VMFiles, VMRecord
from vmpooler.providers.qemu import QemuOptions, QemuProvider, process
from vmpooler.states import VMState
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test guest's builder lives in tests/support
from tests.support.fixtures.libvirtd import DaemonUnavailable, LibvirtDaemon, start_daemon
from tests.support.guest import Guest, GuestUnavailable, build_guest, guest_key

POOL = "local"
SAMPLE_SECONDS = 0.25
CACHE_ROOT = Path.home() / ".cache" / "vmpooler-tests"


@dataclass
class Fill:
    size: int
    ready: int  # fewer than size when the time cap stopped it
    seconds: float  # from the manager's start to the last VM ready
    to_ready: list[float] = field(default_factory=list)  # per VM: pending record -> ready record
    peak_rss_mib: list[float] = field(default_factory=list)  # per VM: its QEMU process' VmHWM
    destroy_seconds: float = 0.0  # destroying the whole pool afterwards, one VM after another

    @property
    def per_minute(self) -> float:
        return 60 * self.ready / self.seconds if self.seconds > 0 else 0.0


def make_provider(state: Path, guest: Guest, args: argparse.Namespace) -> tuple[Provider, dict[str, Any]]:
    options: dict[str, Any] = {"state_dir": str(state), "memory_mb": args.memory_mb, "kernel": str(guest.kernel)}
    options["initrd"] = str(guest.initrd)
    if args.provider == "libvirt":
        from vmpooler.providers.libvirt import LibvirtOptions, LibvirtProvider  # needs the libvirt extra

        options["uri"] = args.uri
        return LibvirtProvider("libvirt", LibvirtOptions(**options)), options
    options["shutdown_grace"] = 5
    return QemuProvider("qemu", QemuOptions(**options)), options


def qemu_pid(info_extra: dict[str, Any], name: str, daemon: LibvirtDaemon | None) -> int | None:
    """The VM's QEMU process: in the qemu provider's VM record, or in the private libvirtd's pid file."""
    if daemon is not None:
        return daemon.qemu_pid(name)
    pid = info_extra.get("pid")
    return int(pid) if pid else None


async def fill(
    store: Store, guest: Guest, state: Path, size: int, args: argparse.Namespace, daemon: LibvirtDaemon | None
) -> Fill:
    await store.client.flushdb()
    provider, options = make_provider(state, guest, args)
    raw = {
        "config": {"check_loop_delay_min": 1, "check_loop_delay_max": 5},
        "providers": {args.provider: options},
        "pools": [{"name": POOL, "template": str(guest.template_disk), "size": size, "provider": args.provider}],
    }
    settings, _ = parse_settings(raw, env={})
    manager = Manager(settings, store, {args.provider: provider}, call_timeout=args.max_seconds)
    stop = asyncio.Event()
    started = time.perf_counter()
    running = asyncio.create_task(manager.run(stop), name="manager")
    requested: dict[str, float] = {}
    became_ready: dict[str, float] = {}
    try:
        while len(became_ready) < size and time.perf_counter() - started < args.max_seconds:
            if running.done():
                running.result()
                raise RuntimeError("the manager stopped before the pool was full")
            now = time.perf_counter() - started
            for name in await store.members(POOL, VMState.PENDING):
                requested.setdefault(name, now)
            for name in await store.members(POOL, VMState.READY):
                requested.setdefault(name, now)
                became_ready.setdefault(name, now)
            await asyncio.sleep(SAMPLE_SECONDS)
        seconds = max(became_ready.values(), default=time.perf_counter() - started)
    finally:
        stop.set()
        await running
    target = PoolTarget(POOL, str(guest.template_disk))
    peaks = []
    try:
        for name in became_ready:
            info = await provider.get_vm(target, name)
            pid = qemu_pid(info.extra, name, daemon) if info is not None else None
            if pid is not None:
                peaks.append(memory_mib(pid)["hwm_mib"])
    finally:
        destroying = time.perf_counter()
        for name in await provider.vms_in_pool(target):
            await provider.destroy_vm(target, name)
        destroy_seconds = time.perf_counter() - destroying
        await provider.close()
    to_ready = [became_ready[name] - requested[name] for name in became_ready]
    return Fill(size, len(became_ready), seconds, to_ready, peaks, destroy_seconds)


async def bench(
    redis_port: int, guest: Guest, workdir: Path, args: argparse.Namespace, daemon: LibvirtDaemon | None
) -> list[Fill]:
    store = Store(connect("127.0.0.1", redis_port))
    fills = []
    try:
        for size in args.sizes:
            console.print(f"filling a pool of {size} ...", highlight=False)
            fills.append(await fill(store, guest, workdir / f"state-{size}", size, args, daemon))
    finally:
        await store.close()
    return fills


def run(args: argparse.Namespace) -> tuple[list[Fill], str]:
    try:
        guest = build_guest(CACHE_ROOT / f"guest-{guest_key()}")
    except GuestUnavailable as exc:
        raise RuntimeError(str(exc)) from exc
    works, why = accel.kvm_works("qemu-system-x86_64")
    accelerator = "KVM" if works else f"TCG ({why})"
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        redis_port, _ = start_redis(children, Path(tmp))
        daemon = None
        try:
            if args.provider == "libvirt" and args.uri is None:
                try:
                    daemon = start_daemon(Path(tmp) / "libvirtd")
                except DaemonUnavailable as exc:
                    raise RuntimeError(f"libvirtd cannot run here: {exc}") from exc
                args.uri = daemon.uri
            return run_async(bench(redis_port, guest, Path(tmp), args, daemon)), accelerator
        finally:
            if daemon is not None:
                daemon.shut_down()  # every domain it still has, then the daemons
            kill_leftovers(Path(tmp))


def kill_leftovers(workdir: Path) -> None:
    """SIGKILL every VM an interrupted run left running: QEMU daemons outlive this process otherwise."""
    for metadata in workdir.rglob("*.json"):
        try:
            record = VMRecord.model_validate_json(metadata.read_bytes())
        except (OSError, ValueError):
            continue
        pid = process.find(VMFiles(metadata.parent, metadata.stem), record.uid, record.pid)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def report(fills: list[Fill], accelerator: str, args: argparse.Namespace) -> None:
    table = Table(title=f"{args.provider} provider through the manager: {accelerator}, -m {args.memory_mb}")
    for column in ("pool size", "ready", "request→ready median", "max", "pool full after", "VMs/min"):
        table.add_column(column, justify="right")
    table.add_column("peak RSS/VM (mean, max)", justify="right")
    table.add_column("destroy/VM", justify="right")
    for f in fills:
        table.add_row(
            str(f.size),
            str(f.ready),
            f"{statistics.median(f.to_ready):.1f} s" if f.to_ready else "-",
            f"{max(f.to_ready):.1f} s" if f.to_ready else "-",
            f"{f.seconds:.1f} s",
            f"{f.per_minute:.1f}",
            f"{statistics.mean(f.peak_rss_mib):.0f}, {max(f.peak_rss_mib):.0f} MiB" if f.peak_rss_mib else "-",
            f"{f.destroy_seconds / max(f.size, 1):.2f} s",
        )
    console.print(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--provider", choices=("qemu", "libvirt"), default="qemu", help="the provider (default qemu)")
    parser.add_argument("--uri", help="libvirt: the daemon to use (default: a private one, started and stopped here)")
    parser.add_argument("--sizes", default="1,3,6", help="pool sizes, comma-separated (default 1,3,6)")
    parser.add_argument("--memory-mb", type=int, default=256, help="memory of each VM (default 256)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time cap per fill (default 300)")
    args = parse_with_figures(parser, argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas")
    if min(args.sizes) < 1:
        parser.error("every pool size must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main(
        "local_vms",
        args,
        lambda: run(args),
        lambda run_, _load: report(*run_, args),
        lambda run_: {"accelerator": run_[1], "fills": [asdict(f) | {"per_minute": f.per_minute} for f in run_[0]]},
    )


if __name__ == "__main__":
    sys.exit(main())
