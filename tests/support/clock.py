"""The clock tests inject (into the manager, the API, the breaker): wall time plus an offset a test moves forward."""

from __future__ import annotations

import time


class Clock:
    """Wall time plus an offset: ``advance`` skips an expiry, a backoff or a check interval without waiting it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
