"""The waiting checkouts of one pool in the order the API serves them (docs/waiting.md, the store's
fair.lua): each owner's requests FIFO; ready VMs go one at a time to the head whose owner is furthest
behind its share (VMs served per unit of weight); a head given all it asked for is served."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FairQueue", "Waiting"]


@dataclass(frozen=True, slots=True)
class Waiting:
    since: float
    owner: str
    count: int


class FairQueue:
    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = dict(weights or {})
        self._queues: dict[str, deque[Waiting]] = {}
        #: each owner's clock: VMs served to it while others waited, divided by its weight
        self._clock: dict[str, float] = {}
        #: VMs asked for by the requests waiting
        self.vms = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, request: Waiting) -> None:
        waiting = {o for o, q in self._queues.items() if q}
        if not waiting:
            self._clock.clear()  # nobody waits: every owner starts even
        elif request.owner not in waiting:
            # an owner with nothing waiting starts at the least-served waiting owner's clock (never
            # behind its own): being away earns no credit
            least = min(self._clock.get(o, 0.0) for o in waiting)
            self._clock[request.owner] = max(self._clock.get(request.owner, 0.0), least)
        self._queues.setdefault(request.owner, deque()).append(request)
        self.vms += request.count

    def take(self, available: int) -> list[Waiting]:
        """The requests ``available`` ready VMs serve now, removed from the queue (one fair pass)."""
        heads = {o: q[0] for o, q in self._queues.items() if q}
        given = dict.fromkeys(heads, 0)
        for _ in range(available):
            wanting = [
                (self._clock.get(o, 0.0) + given[o] / self._weight(o), head.since, o)
                for o, head in heads.items()
                if given[o] < head.count
            ]
            if not wanting:
                break
            given[min(wanting)[2]] += 1
        served = [head for o, head in heads.items() if given[o] == head.count]
        for head in served:
            self._queues[head.owner].popleft()
            self._clock[head.owner] = self._clock.get(head.owner, 0.0) + head.count / self._weight(head.owner)
            self.vms -= head.count
        return served

    def _weight(self, owner: str) -> float:
        return self.weights.get(owner, 1.0)
