"""Checkout traces: one CSV row per checkout request (seconds into the trace, owner, VMs asked for), and
the seeded generators of the synthetic weeks shipped in bench/traces/."""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WEEK_S", "Arrival", "bursty_week", "read_trace", "steady_week", "write_trace"]

WEEK_S = 7 * 24 * 3600
DAY_S = 24 * 3600
#: the hours (UTC) the nightly pipelines start each day: a scheduled fan-out, the same every night
NIGHTLY_HOURS = (1, 4)


@dataclass(frozen=True, slots=True, order=True)
class Arrival:
    """One checkout request: ``at`` seconds into the trace (a trace starts on a Monday 00:00 UTC)."""

    at: float
    owner: str
    count: int = 1


def read_trace(path: Path) -> list[Arrival]:
    """The rows of a trace CSV (header ``t,owner,count``), in time order."""
    with path.open(newline="") as handle:
        rows = csv.DictReader(handle)
        missing = {"t", "owner"} - set(rows.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the header lacks {', '.join(sorted(missing))} (expected t,owner,count)")
        arrivals = []
        for line, row in enumerate(rows, start=2):
            try:
                arrivals.append(Arrival(float(row["t"]), row["owner"], int(row.get("count") or 1)))
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
    return sorted(arrivals)


def write_trace(path: Path, arrivals: Iterable[Arrival]) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["t", "owner", "count"])
        for arrival in arrivals:
            out.writerow([f"{arrival.at:.1f}", arrival.owner, arrival.count])


def _diurnal(at: float) -> float:
    """Relative demand of the base load: a working-day bell around 14h, a low night, quiet weekends."""
    day, hour = divmod(at % WEEK_S, DAY_S)
    hour /= 3600
    level = 0.08 + math.exp(-(((hour - 14) / 3.5) ** 2))
    return level * (0.25 if day >= 5 else 1.0)


def _poisson_base(rng: random.Random, peak_per_minute: float, owners: list[str]) -> Iterator[Arrival]:
    """A thinned Poisson process following ``_diurnal``; most requests ask for one VM, a few for more."""
    rate = peak_per_minute / 60 * 1.1  # the bound the thinning accepts under
    at = 0.0
    while True:
        at += rng.expovariate(rate)
        if at >= WEEK_S:
            return
        if rng.random() < _diurnal(at) / 1.1:
            yield Arrival(round(at, 1), rng.choice(owners), rng.choices((1, 2, 3), (0.85, 0.1, 0.05))[0])


def _burst(rng: random.Random, start: float, owner: str) -> Iterator[Arrival]:
    """A pipeline fanning out 30-100 jobs over about a minute."""
    jobs = rng.randint(30, 100)
    spread = rng.uniform(20, 90)
    for _ in range(jobs):
        yield Arrival(round(start + rng.uniform(0, spread), 1), owner, 1)


def bursty_week(seed: int) -> list[Arrival]:
    """A week of CI: a diurnal base of single checkouts, two scheduled nightly fan-outs a day, and a few
    fan-outs at random times of the working day (merges, releases)."""
    rng = random.Random(seed)
    owners = ["alice", "bob", "carol", "dave", "erin"]
    arrivals = list(_poisson_base(rng, 1.5, owners))
    for day in range(7):
        for hour in NIGHTLY_HOURS:
            # cron starts on the hour; the pipeline reaches its test stage a few minutes later
            arrivals += _burst(rng, day * DAY_S + hour * 3600 + rng.uniform(120, 300), "nightly")
        for _ in range(rng.randint(2, 4) if day < 5 else rng.randint(0, 1)):
            arrivals += _burst(rng, day * DAY_S + rng.uniform(9, 18) * 3600, "ci")
    return sorted(a for a in arrivals if a.at < WEEK_S)


def steady_week(seed: int) -> list[Arrival]:
    """A week of the diurnal base alone: no fan-outs."""
    return sorted(_poisson_base(random.Random(seed), 2.0, ["alice", "bob", "carol", "dave", "erin"]))
