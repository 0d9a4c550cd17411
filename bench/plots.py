"""The two PNG plots of ``make bench``: checkout latency against concurrency and against pool size."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine

import matplotlib.pyplot as plt  # after the backend is chosen

P99_TARGET_MS = 20.0


def _series(
    scenarios: list[dict[str, Any]], key: str, value: Any, x: str
) -> tuple[list[float], list[float], list[float]]:
    """(x values, p50s, p99s) of the scenarios whose ``key`` is ``value``, in x order."""
    chosen = sorted((s for s in scenarios if s[key] == value), key=lambda s: s[x])
    return [s[x] for s in chosen], [s["p50_ms"] for s in chosen], [s["p99_ms"] for s in chosen]


def latency_vs_concurrency(checkout: dict[str, Any], floors: dict[str, Any] | None, path: Path, caption: str) -> None:
    scenarios = checkout["results"]["scenarios"]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for size in sorted({s["pool_size"] for s in scenarios}):
        xs, p50, p99 = _series(scenarios, "pool_size", size, "concurrency")
        (line,) = axes.plot(xs, p99, marker="o", label=f"checkout p99, {size:,} VMs")
        axes.plot(xs, p50, marker="o", linestyle="--", color=line.get_color(), label=f"checkout p50, {size:,} VMs")
    if floors is not None:
        rows = sorted(floors["results"], key=lambda r: r["concurrency"])
        levels = [r["concurrency"] for r in rows]
        for phase, label, color in (("noop_http", "no-op GET /api/v3/vm", "0.45"), ("evalsha", "EVALSHA", "0.7")):
            axes.plot(levels, [r[phase]["p99_ms"] for r in rows], marker="s", color=color, label=f"floor p99, {label}")
            axes.plot(levels, [r[phase]["p50_ms"] for r in rows], marker="s", color=color, linestyle="--",
                      label=f"floor p50, {label}")  # fmt: skip
    axes.axhline(P99_TARGET_MS, color="red", linewidth=1, linestyle=":", label=f"p99 target {P99_TARGET_MS:g} ms")
    axes.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)")
    axes.set_xticks(sorted({s["concurrency"] for s in scenarios}), labels=None)
    axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_title("Checkout latency against concurrency (vmpooler api, 2 shared cores)")
    _finish(figure, axes, path, caption)


def latency_vs_pool_size(checkout: dict[str, Any], path: Path, caption: str) -> None:
    scenarios = checkout["results"]["scenarios"]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for concurrency in sorted({s["concurrency"] for s in scenarios}):
        xs, p50, p99 = _series(scenarios, "concurrency", concurrency, "pool_size")
        (line,) = axes.plot(xs, p99, marker="o", label=f"p99, {concurrency} clients")
        axes.plot(xs, p50, marker="o", linestyle="--", color=line.get_color(), label=f"p50, {concurrency} clients")
    axes.axhline(P99_TARGET_MS, color="red", linewidth=1, linestyle=":", label=f"p99 target {P99_TARGET_MS:g} ms")
    axes.set(xscale="log", yscale="log", xlabel="ready VMs in the pool", ylabel="latency (ms)")
    axes.set_xticks(sorted({s["pool_size"] for s in scenarios}))
    axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_title("Checkout latency against pool size (vmpooler api, 2 shared cores)")
    _finish(figure, axes, path, caption)


def _finish(figure: Any, axes: Any, path: Path, caption: str) -> None:
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="x-small", loc="upper left", ncol=2)
    figure.text(0.01, 0.01, caption, fontsize="x-small", color="0.4")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def draw(figures: Mapping[str, dict[str, Any] | None], docs: Path, caption: str) -> list[Path]:
    """Both plots into ``docs``; none when the checkout benchmark has no figures."""
    checkout = figures.get("checkout")
    if checkout is None:
        return []
    by_concurrency = docs / "bench-latency-vs-concurrency.png"
    by_size = docs / "bench-latency-vs-pool-size.png"
    latency_vs_concurrency(checkout, figures.get("floors"), by_concurrency, caption)
    latency_vs_pool_size(checkout, by_size, caption)
    return [by_concurrency, by_size]
