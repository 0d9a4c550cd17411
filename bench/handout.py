"""Hand-out checks and failover under injected faults (issue 20; results in BENCHMARKS.md).

(a) ``handout``: ``vmpooler serve`` with two dummy pools whose VMs fail as the issue says (5 % die silently
once ready, 2 % answer the port but not the service); pool ``on`` has an ``ssh`` hand-out check (300 ms
budget), pool ``off`` none. Checkouts alternate between them, one at a time; each VM handed out is probed
by the benchmark itself (its SSH banner at the address the API reports, 2 s budget) and returned. Reported:
bad VMs handed out per pool (target 0 for ``on``) and checkout p50/p95 with the check on and off
(target: p95 on ≤ p95 off + 150 ms).

(b) ``failover``: pool ``spot`` on a provider whose every clone fails (its breaker opens), ``fallback:
[ondemand]``, and ``ondemand`` whose clones take up to ``--clone-seconds``. Each of ``--clients`` users
checks out ``spot`` (retrying a 503 every 100 ms), keeps the VM ``--hold`` seconds, returns it, and asks
again. Reported: how many were served by the fallback and the p95 wait from first request to VM (target:
≤ the fallback's clone time + 5 s). Demand beyond what the fallback pool can clone waits longer whatever
the failover does: ``--hold 0`` shows that.

    .venv/bin/python bench/handout.py [--checkouts 2000] [--quick] [--phase handout|failover]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
)
from vmpooler.config.handout import HandoutCheck
from vmpooler.health.probe import probe

FAULTS = {"ready_die_percent": 5, "port_without_service_percent": 2}
CHECK = {"ssh": 22, "budget_ms": 300}
#: the benchmark's own verdict on a VM handed out: its SSH banner within this budget
VERIFY = HandoutCheck(ssh=22, budget_ms=2000)


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def write(path: Path, redis_port: int, providers: dict[str, Any], pools: list[dict[str, Any]]) -> Path:
    raw = {
        "redis": {"server": "127.0.0.1", "port": redis_port},
        "config": {"site_name": "bench", "task_limit": 40, "check_loop_delay_min": 0.1, "check_loop_delay_max": 1},
        "providers": providers,
        "pools": pools,
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


async def wait_ready(client: httpx.AsyncClient, pools: dict[str, int], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await client.get("/api/v3/status")).json()["pools"]
        if all(status[name]["ready"] >= size for name, size in pools.items()):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"pools {pools} did not fill within {timeout:.0f}s")


async def checkout_one(client: httpx.AsyncClient, pool: str) -> tuple[str, float, int]:
    """(hostname, seconds of the successful request, 503s before it)."""
    refusals = 0
    while True:
        started = time.perf_counter()
        reply = await client.post(f"/api/v3/vm/{pool}")
        took = time.perf_counter() - started
        if reply.status_code == 200:
            return reply.json()[pool]["hostname"], took, refusals
        if reply.status_code != 503:
            raise RuntimeError(f"checkout of {pool}: {reply.status_code} {reply.text[:200]}")
        refusals += 1
        await asyncio.sleep(0.05)


async def handout_phase(url: str, checkouts: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await wait_ready(client, {"on": 40, "off": 40})
        times: dict[str, list[float]] = {"on": [], "off": []}
        bad: dict[str, list[str]] = {"on": [], "off": []}
        refused = {"on": 0, "off": 0}
        for i in range(2 * checkouts):
            pool = "on" if i % 2 == 0 else "off"
            hostname, took, refusals = await checkout_one(client, pool)
            times[pool].append(took)
            refused[pool] += refusals
            address = (await client.get(f"/api/v3/vm/{hostname}")).json()[hostname]["ip"]
            if await probe(VERIFY, address, hostname) is not None:
                bad[pool].append(hostname)
            await client.delete(f"/api/v3/vm/{hostname}")
        for pool in ("on", "off"):
            figures[pool] = {
                "checkouts": len(times[pool]),
                "bad_vms_handed_out": len(bad[pool]),
                "p50_ms": round(statistics.median(times[pool]) * 1000, 1),
                "p95_ms": round(percentile(times[pool], 0.95) * 1000, 1),
                "refused_503": refused[pool],
            }
    return figures


async def failover_phase(url: str, checkouts: int, clients: int, clone_seconds: float, hold: float) -> dict[str, Any]:
    waits: list[float] = []
    served = {"fallback": 0, "primary": 0}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await wait_ready(client, {"ondemand": 3})
        remaining = checkouts

        async def user() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                while True:
                    reply = await client.post("/api/v3/vm/spot")
                    if reply.status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                waits.append(time.perf_counter() - started)
                body = reply.json()["spot"]
                served["fallback" if "fallback" in body else "primary"] += 1
                await asyncio.sleep(hold)
                await client.delete(f"/api/v3/vm/{body['hostname']}")

        await asyncio.gather(*(user() for _ in range(clients)))
    return {
        "checkouts": len(waits),
        "served": served,
        "clone_seconds": clone_seconds,
        "clients": clients,
        "hold_s": hold,
        "p50_wait_s": round(statistics.median(waits), 2),
        "p95_wait_s": round(percentile(waits, 0.95), 2),
        "max_wait_s": round(max(waits), 2),
    }


def run(args: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if args.phase in ("all", "handout"):
        figures["handout"] = handout(args)
    if args.phase in ("all", "failover"):
        figures["failover"] = failover(args)
    return figures


def handout(args: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        work = Path(tmp)
        redis_port, _ = start_redis(children, work)
        dummy = {"listen": True, "ready_delay": 0.05, **FAULTS}
        pools = [
            {"name": "on", "template": "on", "size": 60, "handout_check": CHECK},
            {"name": "off", "template": "off", "size": 60},
        ]
        config = write(work / "handout.yaml", redis_port, {"dummy": dummy}, pools)
        url, _ = start_vmpooler(children, "serve", config, work)
        return run_async(handout_phase(url, args.checkouts))


def failover(args: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        work = Path(tmp)
        redis_port, _ = start_redis(children, work)
        providers = {
            "dummy": {"ready_delay": 0.05, "createvm_max_time": args.clone_seconds},
            "broken": {"provider_class": "dummy", "createvm_fail_percent": 100},
        }
        pools = [
            {"name": "spot", "template": "spot", "size": 5, "provider": "broken", "fallback": ["ondemand"]},
            {"name": "ondemand", "template": "ondemand", "size": 3},
        ]
        config = write(work / "failover.yaml", redis_port, providers, pools)
        url, _ = start_vmpooler(children, "serve", config, work)
        return run_async(failover_phase(url, args.failover_checkouts, args.clients, args.clone_seconds, args.hold))


def report(figures: dict[str, Any], load: float) -> None:
    if "handout" in figures:
        report_handout(figures["handout"])
    if "failover" in figures:
        report_failover(figures["failover"], load)


def report_handout(handout: dict[str, Any]) -> None:
    for pool in ("on", "off"):
        f = handout[pool]
        console.print(
            f"check {pool:>3}: {f['checkouts']} checkouts, {f['bad_vms_handed_out']} bad VMs handed out, "
            f"p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, {f['refused_503']} 503s (retried)",
            highlight=False,
        )
    growth = handout["on"]["p95_ms"] - handout["off"]["p95_ms"]
    ok = handout["on"]["bad_vms_handed_out"] == 0 and growth <= 150
    console.print(f"p95 growth with the check: {growth:+.1f} ms (target ≤ +150 ms, 0 bad): {'PASS' if ok else 'MISS'}")


def report_failover(f: dict[str, Any], load: float) -> None:
    target = f["clone_seconds"] + 5
    console.print(
        f"failover: {f['checkouts']} checkouts of a pool failing 100 % ({f['clients']} users, each keeping a VM "
        f"{f['hold_s']:g} s), served {f['served']}, wait p50 "
        f"{f['p50_wait_s']} s, p95 {f['p95_wait_s']} s, max {f['max_wait_s']} s (target p95 ≤ {target:g} s): "
        f"{'PASS' if f['p95_wait_s'] <= target else 'MISS'}; load {load:.2f} before (other agents share the machine)",
        highlight=False,
    )


def parse_args(argv: Sequence[str] | None) -> Any:
    parser = argument_parser(__doc__)
    parser.add_argument("--checkouts", type=int, default=2000, help="checkouts per pool in (a) (default 2,000)")
    parser.add_argument("--failover-checkouts", type=int, default=200, help="checkouts in (b) (default 200)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients in (b) (default 4)")
    parser.add_argument("--clone-seconds", type=float, default=2.0, help="the fallback's clone time (default 2)")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds a user keeps a VM in (b) (default 1)")
    parser.add_argument("--phase", choices=("all", "handout", "failover"), default="all", help="run only one")
    parser.add_argument("--quick", action="store_true", help="short: 200 checkouts, 40 in (b)")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.checkouts, args.failover_checkouts = min(args.checkouts, 200), min(args.failover_checkouts, 40)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("handout", args, lambda: run(args), report)


if __name__ == "__main__":
    sys.exit(main())
