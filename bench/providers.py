"""Clones per minute and time-to-ready of each cloud/vCenter provider against its simulator (BENCHMARKS.md).

Starts vcsim (built from Debian's govmomi, as the tests do, with a thread playing VMware Tools) and
moto_server, then asks each provider directly for N clones at concurrency 1 and 10 and waits for
each to be ready. The dummy provider (no delays) is the floor: what the provider layer itself
costs. The simulators bound these figures, not the platforms: a real vCenter clone takes tens of
seconds. The real local hypervisors (qemu, libvirt) have their own benchmark, ``bench/local_vms.py``.

    .venv/bin/python bench/providers.py [--clones 60] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from rich.table import Table

from common import argument_parser, benchmark_main, console, parse_with_figures, run_async

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the simulators' fixtures live with the tests

from tests.support.fixtures.moto import MotoServer, _moto_command  # noqa: E402
from tests.support.fixtures.vcsim import GuestTools, Vcsim, vcsim_binary  # noqa: E402

from vmpooler.domain import PoolTarget  # noqa: E402
from vmpooler.providers.base import Provider  # noqa: E402
from vmpooler.providers.dummy import DummyOptions, DummyProvider  # noqa: E402
from vmpooler.providers.ec2 import EC2Options, EC2Provider  # noqa: E402
from vmpooler.providers.vsphere import VSphereProvider  # noqa: E402
from vmpooler.store.embedded import free_port  # noqa: E402

Setup = Callable[[AsyncExitStack], Awaitable[tuple[Provider, PoolTarget]]]


async def dummy(stack: AsyncExitStack) -> tuple[Provider, PoolTarget]:
    return DummyProvider("dummy", DummyOptions(ready_delay=0)), PoolTarget("bench", "t")


async def vsphere(stack: AsyncExitStack) -> tuple[Provider, PoolTarget]:
    server = Vcsim(vcsim_binary())
    server.start()
    stack.callback(server.stop)
    tools = GuestTools(server, interval=0.05)
    tools.start()
    stack.callback(tools.stop)
    return VSphereProvider("vsphere", server.options(connection_pool_size=4)), server.pool()


async def ec2(stack: AsyncExitStack) -> tuple[Provider, PoolTarget]:
    command = _moto_command()
    if command is None:
        raise RuntimeError("moto_server is not installed (the dev dependencies include moto[server])")
    workdir = Path(tempfile.mkdtemp(prefix="bench-moto-"))
    server = MotoServer(command, free_port(), workdir / "moto.log")
    server.start()
    stack.callback(server.kill)
    images = server.client().describe_images(Filters=[{"Name": "state", "Values": ["available"]}])["Images"]
    ami = min(image["ImageId"] for image in images)
    return EC2Provider("ec2", EC2Options.model_validate(server.provider_options(max_attempts=3))), PoolTarget(
        "bench", ami
    )


PROVIDERS: dict[str, Setup] = {"dummy": dummy, "vsphere": vsphere, "ec2": ec2}


async def clone_until_ready(provider: Provider, pool: PoolTarget, name: str) -> tuple[float, float]:
    started = time.perf_counter()
    await provider.create_vm(pool, name)
    cloned = time.perf_counter()
    while not await provider.vm_ready(pool, name):  # noqa: ASYNC110 - readiness is a remote state to poll
        await asyncio.sleep(0.01)
    return cloned - started, time.perf_counter() - started


async def measure(setup: Setup, clones: int, concurrency: int) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        provider, pool = await setup(stack)
        stack.push_async_callback(provider.close)
        pool = PoolTarget(f"{pool.name}-{uuid.uuid4().hex[:6]}", pool.template, pool.provider_options)
        await clone_until_ready(provider, pool, "warm-up")  # login, folders, base snapshot: not timed
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> tuple[float, float]:
            async with gate:
                return await clone_until_ready(provider, pool, f"b{i}-{uuid.uuid4().hex[:6]}")

        started = time.perf_counter()
        timings = await asyncio.gather(*(one(i) for i in range(clones)))
        wall = time.perf_counter() - started
        names = await provider.vms_in_pool(pool)
        await asyncio.gather(*(provider.destroy_vm(pool, name) for name in names))
    create = sorted(t[0] for t in timings)
    ready = sorted(t[1] for t in timings)
    return {
        "create_p50_ms": statistics.median(create) * 1000,
        "ready_p50_ms": statistics.median(ready) * 1000,
        "ready_p95_ms": ready[max(0, int(0.95 * len(ready)) - 1)] * 1000,
        "clones_per_minute": clones / wall * 60,
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for name in args.providers:
        for concurrency in (1, 10):
            console.print(f"{name}: {args.clones} clones at concurrency {concurrency} ...", highlight=False)
            figures = run_async(measure(PROVIDERS[name], args.clones, concurrency))
            results.append({"provider": name, "concurrency": concurrency, **figures})
    return results


def report(results: list[dict[str, Any]]) -> None:
    table = Table(title="provider clone to ready, against the simulators")
    for column in ("provider", "concurrency", "create_vm p50", "to ready p50", "to ready p95", "clones/min"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["provider"],
            str(r["concurrency"]),
            f"{r['create_p50_ms']:.0f} ms",
            f"{r['ready_p50_ms']:.0f} ms",
            f"{r['ready_p95_ms']:.0f} ms",
            f"{r['clones_per_minute']:,.0f}",
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--clones", type=int, default=60, help="timed clones per provider and concurrency")
    parser.add_argument("--providers", nargs="+", choices=sorted(PROVIDERS), default=list(PROVIDERS))
    parser.add_argument("--quick", action="store_true", help="10 clones each")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.clones = 10
    return benchmark_main("providers", args, lambda: run(args), lambda results, _load: report(results))


if __name__ == "__main__":
    sys.exit(main())
