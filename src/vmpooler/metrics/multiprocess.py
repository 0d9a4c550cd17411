"""Prometheus across processes: `serve` runs the API and the manager apart, and /prometheus shows both."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess, values

#: prometheus_client's own switch: set, every process writes its samples to files in this directory
ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable(directory: Path) -> None:
    """In the supervising parent, before any child is forked: start from an empty directory (the files of
    an earlier run would add their counts to ours) and make every metric made from now on write there."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    # prometheus_client chooses its value class when first imported, which the CLI has already done
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def shared_registry() -> CollectorRegistry:
    """A registry that reads every process's files at collection time (made per scrape, as documented)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def process_dead(pid: int) -> None:
    """Drop the gauges of a child that ended; its counters stay, so totals never go backwards."""
    if enabled():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
