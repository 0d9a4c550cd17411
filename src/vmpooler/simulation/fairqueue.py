"""The waiting checkouts of one pool in weighted fair order: each owner's requests FIFO, and the next
request from the owner furthest below its share of the VMs handed out so far."""

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
    """All or nothing, as a checkout: the chosen request is served only when enough VMs are ready,
    and nobody behind it is served first (a large request is not starved by small ones)."""

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = dict(weights or {})
        self._queues: dict[str, deque[Waiting]] = {}
        #: VMs handed to each owner, divided by its weight: who is furthest behind goes next
        self._served: dict[str, float] = {}
        self.vms = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, request: Waiting) -> None:
        queue = self._queues.setdefault(request.owner, deque())
        if not queue:
            # an owner coming back starts level with the least served one waiting now, so a long
            # absence is no credit to spend against the others
            active = [self._served.get(o, 0.0) for o, q in self._queues.items() if q]
            floor = min(active, default=0.0)
            self._served[request.owner] = max(self._served.get(request.owner, 0.0), floor)
        queue.append(request)
        self.vms += request.count

    def head(self) -> Waiting | None:
        waiting = [(self._served.get(o, 0.0), q[0].since, o) for o, q in self._queues.items() if q]
        return self._queues[min(waiting)[2]][0] if waiting else None

    def pop(self) -> Waiting:
        request = self.head()
        if request is None:
            raise IndexError("nobody is waiting")
        self._queues[request.owner].popleft()
        self._served[request.owner] = self._served.get(request.owner, 0.0) + request.count / self.weights.get(
            request.owner, 1.0
        )
        self.vms -= request.count
        return request
