"""Issue 19's end-to-end check: a slice of the bursty week replayed 60x faster against ``vmpooler serve``
(the dummy provider cloning in the simulator's lognormal), compared with ``vmpooler simulate`` on the same
slice: p95 wait and idle VM-hours should agree within 10 %.

Checkouts wait in the API's fair queue (``?wait=600``, docs/waiting.md), or with ``--retry`` the client
retries a 503 every 20 ms instead; either way the client measures the wait itself. A static pool's
manager does not clone for the queue, so the simulator is run the same way (``clone_for_queue=False``).
The pool is a static size: the autoscale rule learns by the hour of the week, which a 60x replay does
not pass through (see BENCHMARKS.md).

    .venv/bin/python bench/autoscale_replay.py [--start-hour 8] [--hours 4] [--size 20] [--json FILE]
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    write_config,
)
from vmpooler.simulation import Arrival, Lognormal, SimulationSettings, parse_policy, read_trace, simulate
from vmpooler.sizing import AutoscaleSpec
from vmpooler.states import VMState
from vmpooler.store import keys

TRACE = Path(__file__).resolve().parent / "traces" / "bursty-week.csv"
COMPRESSION = 60.0
REFILL = Lognormal(90.0, 30.0)
HOLD = Lognormal(1200.0, 900.0)
TASK_LIMIT = 10
POOL = "bursty"
RETRY_S = 0.02


def trace_slice(start_hour: float, hours: float) -> list[Arrival]:
    start, end = start_hour * 3600, (start_hour + hours) * 3600
    return [Arrival(a.at - start, a.owner, a.count) for a in read_trace(TRACE) if start <= a.at < end]


def simulated(arrivals: list[Arrival], size: int) -> dict[str, float]:
    settings = SimulationSettings(refill=REFILL, hold=HOLD, clone_slots=TASK_LIMIT, clone_for_queue=False)
    result = simulate(arrivals, parse_policy(f"static:{size}", AutoscaleSpec(0, 0, 1)), settings)
    return {
        "p95_s": result.percentile(0.95),
        "p99_s": result.percentile(0.99),
        "idle_vm_hours": result.idle_vm_hours,
        "requests": len(result.waits),
    }


async def replay(url: str, redis_port: int, arrivals: list[Arrival], retry: bool) -> dict[str, float]:
    """Every request at its (compressed) time, retried on 503; each VM given back after its hold."""
    rng = random.Random(2)
    waits: list[float] = []
    idle_seconds = 0.0
    done = asyncio.Event()
    client = httpx.AsyncClient(base_url=url, timeout=660)
    store = aioredis.Redis(port=redis_port, decode_responses=True)
    begin = time.monotonic() + 0.5

    async def one(arrival: Arrival) -> None:
        due = begin + arrival.at / COMPRESSION
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        path = "/api/v3/vm/" + "+".join([POOL] * arrival.count) + ("" if retry else "?wait=600")
        # without waiting checkouts no event tells a client a VM came ready: it polls
        while (reply := await client.post(path)).status_code == 503:  # noqa: ASYNC110
            await asyncio.sleep(RETRY_S)
        waits.append((time.monotonic() - due) * COMPRESSION)
        found = reply.json()[POOL]["hostname"]
        for name in [found] if isinstance(found, str) else found:
            hold = HOLD.draw(rng)
            asyncio.get_running_loop().call_later(hold / COMPRESSION, _give_back, name)

    returns: set[asyncio.Task[httpx.Response]] = set()

    def _give_back(name: str) -> None:
        task = asyncio.ensure_future(client.delete(f"/api/v3/vm/{name}"))
        returns.add(task)
        task.add_done_callback(returns.discard)

    async def sample() -> None:
        nonlocal idle_seconds
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.1)
            now = time.monotonic()
            ready = await store.scard(keys.state_set(VMState.READY, POOL))
            if now >= begin:
                idle_seconds += ready * (now - max(last, begin)) * COMPRESSION
            last = now

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(one(a) for a in arrivals))
    done.set()
    await sampler
    await client.aclose()
    await store.aclose()
    return {
        "p95_s": percentile(waits, 0.95),
        "p99_s": percentile(waits, 0.99),
        "idle_vm_hours": idle_seconds / 3600,
        "requests": len(waits),
    }


def percentile(values: list[float], fraction: float) -> float:
    """As ``Result.percentile``: the smallest value at least ``fraction`` of them do not exceed."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] if ordered else 0.0


def run(args: Any) -> dict[str, Any]:
    arrivals = trace_slice(args.start_hour, args.hours)
    sim = simulated(arrivals, args.size)
    with tempfile.TemporaryDirectory() as tmp, Children() as children:
        work = Path(tmp)
        redis_port, _ = start_redis(children, work)
        provider = {
            "createvm_mean_time": REFILL.mean / COMPRESSION,
            "createvm_sd_time": REFILL.sd / COMPRESSION,
            "ready_delay": 0,
            "seed": 1,
        }
        config = write_config(
            work / "replay.yaml",
            redis_port,
            [(POOL, args.size)],
            providers={"dummy": provider},
            config={"task_limit": TASK_LIMIT, "check_loop_delay_min": 0.05, "check_loop_delay_max": 0.5},
        )
        url, _ = start_vmpooler(children, "serve", config, work)
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/api/v3/status").json()["pools"][POOL]["ready"] < args.size:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pool did not fill to {args.size} within 120 s")
            time.sleep(0.2)
        console.print(f"replaying {len(arrivals)} requests over {args.hours * 3600 / COMPRESSION:.0f} s ...")
        real = run_async(replay(url, redis_port, arrivals, args.retry))
    return {
        "simulated": sim,
        "replayed": real,
        "size": args.size,
        "start_hour": args.start_hour,
        "hours": args.hours,
        "compression": COMPRESSION,
    }


def report(figures: dict[str, Any], load: float) -> None:
    sim, real = figures["simulated"], figures["replayed"]
    console.print(f"load average {load:.1f} before the run (2 CPUs shared: timing noise widens the waits)")
    for key in ("p95_s", "p99_s", "idle_vm_hours", "requests"):
        s, r = sim[key], real[key]
        off = (r - s) / s if s else math.nan
        figures.setdefault("relative", {})[key] = off
        console.print(f"  {key:<14} simulated {s:10.1f}  replayed {r:10.1f}  ({off:+.0%})", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--start-hour", type=float, default=8.0, help="where the slice starts (hours into the week)")
    parser.add_argument("--hours", type=float, default=4.0, help="trace hours replayed (a minute each)")
    parser.add_argument("--size", type=int, default=20, help="the pool's static size")
    parser.add_argument("--retry", action="store_true", help="retry 503s every 20 ms instead of ?wait=600")
    args = parse_with_figures(parser, argv)
    return benchmark_main("autoscale_replay", args, lambda: run(args), report)


if __name__ == "__main__":
    sys.exit(main())
