"""A discrete-event simulation of one pool: checkouts from a trace, clones drawn from a lognormal, the
ready target from a policy. Time is a heap of events, never a sleep, so a week runs in about a second."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from vmpooler.simulation.fairqueue import FairQueue, Waiting
from vmpooler.simulation.policies import Levels, Policy
from vmpooler.simulation.trace import WEEK_S, Arrival

__all__ = ["TRACE_EPOCH", "WEEK_S", "Lognormal", "Result", "SimulationSettings", "simulate"]

#: a trace's second 0 is this epoch second (Monday 2024-01-01 00:00 UTC), so hours of the week line up
TRACE_EPOCH = 1_704_067_200
#: the window the recent checkout rate is measured over, as the manager does
RECENT_WINDOW_S = 120.0


@dataclass(frozen=True, slots=True)
class Lognormal:
    """A duration distribution given by its mean and standard deviation (seconds)."""

    mean: float
    sd: float

    def draw(self, rng: random.Random) -> float:
        if self.sd <= 0:
            return self.mean
        sigma2 = math.log(1 + (self.sd / self.mean) ** 2)
        return rng.lognormvariate(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2))


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    refill: Lognormal = field(default_factory=lambda: Lognormal(90.0, 30.0))
    #: how long a checked-out VM is used before it is returned (and destroyed)
    hold: Lognormal = field(default_factory=lambda: Lognormal(1200.0, 900.0))
    #: the manager's periodic pass, between the passes a checkout or a finished clone wakes
    tick_s: float = 15.0
    #: clones in flight at once (``task_limit``); None: no limit
    clone_slots: int | None = 10
    seed: int = 1
    #: owner -> weight in the fair queue (1 when not given)
    weights: Mapping[str, float] = field(default_factory=dict)
    #: the manager clones for the VMs waiting checkouts ask for (False: as before waiting checkouts,
    #: when a client retrying on 503 is invisible to the manager)
    clone_for_queue: bool = True


@dataclass
class Result:
    policy: str
    #: each request's wait in seconds (0: served from ready), in arrival order
    waits: list[float] = field(default_factory=list)
    #: when each of those requests came (seconds into the trace), to find where the waits were
    arrived: list[float] = field(default_factory=list)
    #: and whose they were
    owners: list[str] = field(default_factory=list)
    #: VMs handed to each owner
    served: dict[str, int] = field(default_factory=dict)
    idle_vm_seconds: float = 0.0
    clones: int = 0
    duration_s: float = 0.0

    def percentile(self, fraction: float) -> float:
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]

    @property
    def idle_vm_hours(self) -> float:
        return self.idle_vm_seconds / 3600

    def attainment(self, target_s: float) -> float:
        """The share of requests that waited no longer than ``target_s``."""
        return sum(w <= target_s for w in self.waits) / len(self.waits) if self.waits else 1.0


class _Kind(IntEnum):
    # at one instant: VMs come back and clones finish before the arrivals they may serve
    JOB_END = 0
    CLONE_DONE = 1
    ARRIVAL = 2
    TICK = 3


class _Pool:
    def __init__(self, policy: Policy, settings: SimulationSettings, start: float) -> None:
        self.policy = policy
        self.settings = settings
        self.clone_rng = random.Random(settings.seed)
        self.hold_rng = random.Random(settings.seed + 1)
        self.events: list[tuple[float, int, int, object]] = []
        self.sequence = 0
        self.now = self.start = start
        self.ready = self.pending = self.running = 0
        self.queue = FairQueue(settings.weights)
        self.recent: deque[tuple[float, int]] = deque()
        self.recent_vms = 0
        self.minute = int(start // 60 * 60)
        self.minute_vms = 0
        self.result = Result(policy.name)

    def schedule(self, at: float, kind: _Kind, payload: object = None) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, kind, self.sequence, payload))

    def advance(self, to: float) -> None:
        self.result.idle_vm_seconds += self.ready * (to - self.now)
        while to >= self.minute + 60:  # every finished minute is learned, a quiet one as 0
            self.policy.learn_minute(self.minute, self.minute_vms)
            self.minute += 60
            self.minute_vms = 0
        self.now = to

    def arrive(self, arrival: Arrival) -> None:
        self.queue.push(Waiting(self.now, arrival.owner, arrival.count))
        self.minute_vms += arrival.count
        self.recent.append((self.now, arrival.count))
        self.recent_vms += arrival.count

    def serve(self) -> None:
        while served := self.queue.take(self.ready):
            for request in served:
                self.ready -= request.count
                self.running += request.count
                self.result.waits.append(self.now - request.since)
                self.result.arrived.append(request.since - self.start)
                self.result.owners.append(request.owner)
                self.result.served[request.owner] = self.result.served.get(request.owner, 0) + request.count
                for _ in range(request.count):
                    self.schedule(self.now + self.settings.hold.draw(self.hold_rng), _Kind.JOB_END)

    def resize(self) -> None:
        while self.recent and self.recent[0][0] < self.now - RECENT_WINDOW_S:
            self.recent_vms -= self.recent.popleft()[1]
        slots = self.settings.clone_slots
        queued = self.queue.vms if self.settings.clone_for_queue else 0
        levels = Levels(
            self.now, self.ready, self.pending, self.running, queued, self.recent_vms, RECENT_WINDOW_S, slots
        )
        excess = self.ready + self.pending - self.policy.target(levels)
        if excess > 0:
            # as the manager: surplus ready VMs are destroyed, clones in flight are left to finish
            self.ready -= min(excess, self.ready)
            return
        for _ in range(-excess):
            if slots is not None and self.pending >= slots:
                return
            self.pending += 1
            self.result.clones += 1
            took = self.settings.refill.draw(self.clone_rng)
            self.schedule(self.now + took, _Kind.CLONE_DONE, took)


def simulate(
    arrivals: Sequence[Arrival],
    policy: Policy,
    settings: SimulationSettings,
    *,
    start: float = TRACE_EPOCH,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Run ``arrivals`` (seconds from ``start``) against a pool sized by ``policy``; the run ends when
    the last request is served. ``progress(fraction)`` is called now and then."""
    pool = _Pool(policy, settings, start)
    for arrival in arrivals:
        pool.schedule(start + arrival.at, _Kind.ARRIVAL, arrival)
    end = start + (arrivals[-1].at if arrivals else 0.0)
    pool.schedule(start, _Kind.TICK)
    # the pool has been running before the trace starts: it begins at its policy's level
    pool.ready = policy.target(Levels(start, 0, 0, 0, 0, 0, RECENT_WINDOW_S, settings.clone_slots))
    handled = 0
    while pool.events:
        at, kind, _, payload = heapq.heappop(pool.events)
        pool.advance(at)
        if kind is _Kind.ARRIVAL:
            assert isinstance(payload, Arrival)
            pool.arrive(payload)
            handled += 1
            if progress is not None and handled % 2000 == 0:
                progress(handled / len(arrivals))
        elif kind is _Kind.CLONE_DONE:
            assert isinstance(payload, float)
            pool.pending -= 1
            pool.ready += 1
            pool.policy.learn_refill(payload)
        elif kind is _Kind.JOB_END:
            pool.running -= 1
        elif at < end or len(pool.queue):
            pool.schedule(at + settings.tick_s, _Kind.TICK)
        pool.serve()
        pool.resize()
        if handled == len(arrivals) and not len(pool.queue):
            break
    pool.result.duration_s = pool.now - start
    return pool.result
