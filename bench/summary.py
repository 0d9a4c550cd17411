"""Issue #9's targets judged from the benchmarks' figures, and the generated Summary of BENCHMARKS.md."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: every benchmark's figures file as ``common.write_json`` writes it; None when the benchmark failed
Figures = Mapping[str, dict[str, Any] | None]

START = "<!-- bench:summary:start -->"
END = "<!-- bench:summary:end -->"


@dataclass(frozen=True)
class Target:
    """One row of the summary: a target, what was measured, and whether it is met (None: not judged, as a
    floor, or a figure measured below the target's scale by a quick run)."""

    key: str
    what: str
    goal: str
    measured: str
    ok: bool | None
    ran: bool = True

    @property
    def verdict(self) -> str:
        if not self.ran:
            return "NOT RUN"
        return "—" if self.ok is None else "PASS" if self.ok else "MISS"


#: the rows in order: key, the benchmark measuring it, what, goal (measured text and verdict: the figures)
ROWS = (
    ("checkout_rate", "checkout", "checkout `POST /api/v3/vm/<pool>`, 32 clients, 30 VMs", "≥ 1,500 checkouts/s"),
    ("checkout_p99", "checkout", "checkout p99, 32 clients, 30 VMs", "≤ 20 ms"),
    ("checkout_1000", "checkout", "checkout with 1,000 ready VMs (c32 p99 and rate)", "within 15 % of 30 VMs"),
    ("checkout_10000", "checkout", "checkout with 10,000 ready VMs (c32 p99 and rate)", "within 15 % of 30 VMs"),
    ("status_p99", "status", "`GET /api/v3/status`, 1,000 pools, 32 clients, p99", "≤ 20 ms"),
    ("fill_api_p99", "api_under_fill", "API p99 while the manager fills 5,000 VMs (`vmpooler serve`)", "≤ 25 ms"),
    ("manager_cpu", "manager_scale", "manager: one steady pass, 1,000 pools / 10,000 VMs, CPU", "≤ 100 ms"),
    ("manager_trips_vms", "manager_scale", "manager: Redis round trips per pass vs VMs", "do not grow"),
    ("manager_trips_changed", "manager_scale", "manager: Redis round trips per unchanged pool's pass (running manager)",
     "≤ 0.1"),
    ("manager_rss", "manager_scale", "manager: peak RSS at 1,000 pools / 10,000 VMs", "≤ 150 MiB"),
    ("fill_rate", "fill_rate", "fill rate (dummy clones of fixed time)", "≥ 95 % of task_limit / clone time"),
    ("api_rss", "rss", "API process RSS at rest (`vmpooler api`, 3 pools)", "≤ 80 MiB"),
    ("cli_help", "cli_startup", "`vmpooler --help` start-up, CPU (wall beside it: load)", "≤ 0.3 s"),
    ("cli_get", "cli_startup", "`vmpooler get POOL` against `vmpooler api`, CPU (wall beside it)", "≤ 0.3 s"),
    ("serve_checkout_rate", "serve_scale", "#16 `serve`: checkouts, 32 clients, 3,000-VM pool refilling",
     "≥ 1,500 checkouts/s"),
    ("serve_checkout_p99", "serve_scale", "#16 `serve`: checkout p99, 32 clients, 3,000-VM pool refilling", "≤ 20 ms"),
    ("serve_status_p99", "serve_scale", "#16 `serve`: `/api/v3/status` p99, 32 clients, 2 pools", "≤ 20 ms"),
    ("serve_fill", "serve_scale", "#16 `serve`: filling 3,000 + 30 VMs, task_limit 500, dummy defaults",
     "≥ 95 % of the task_limit bound, flat in pool size"),
    ("serve_many_warnings", "serve_scale", "#16 `serve`, 1,000 pools of 2: \"No connection available\" warnings",
     "0"),
    ("serve_many_history", "serve_scale", "#16 `serve`, 1,000 pools of 2: history points", "one per pool per minute"),
    ("serve_many_idle_cpu", "serve_scale", "#16 `serve`, 1,000 pools of 2: idle CPU (every vmpooler process)",
     "≤ 5 % of a core"),
    ("serve_many_trips", "serve_scale", "#16 `serve`, 1,000 pools of 2: Redis round trips per pool pass while idle",
     "≤ 0.1"),
    ("serve_rss", "serve_scale", "#16 `serve`: RSS of every process (3,000-VM scenario)", "for reference"),
    ("autoscale_p95", "autoscale", "#19 autoscale on the bursty week (simulated): p95 wait", "≤ 1 s"),
    ("autoscale_p99", "autoscale", "#19 autoscale on the bursty week (simulated): p99 wait", "≤ one clone time"),
    ("autoscale_static", "autoscale", "#19 autoscale idle VM-hours vs the smallest static size meeting p95",
     "≥ 30 % below"),
    ("autoscale_min_idle", "autoscale", "#19 autoscale idle VM-hours vs min-idle (ARC) tuned to meet p95",
     "≥ 15 % below"),
    ("autoscale_idle_factor", "autoscale", "#19 autoscale idle VM-hours vs idle-factor (GitLab) tuned to meet p95",
     "≥ 15 % below"),
    ("autoscale_fairness", "autoscale", "#19 three owners at 2x overload: served shares vs weights (simulated)",
     "within ± 5 %"),
    ("autoscale_replay_p95", "autoscale_replay", "#19 60x replay against `serve` vs the simulator: p95 wait",
     "within ± 10 %"),
    ("autoscale_replay_idle", "autoscale_replay", "#19 60x replay against `serve` vs the simulator: idle VM-hours",
     "within ± 10 %"),
    ("fast_clone_speedup", "fast_clone", "#20 qemu clone restored from memory vs cold boot (TCG), request → reachable",
     "≥ 5x faster at p50"),
    ("handout_bad", "handout", "#20 hand-out check: bad VMs handed out (5 % die once ready, 2 % half-alive)",
     "0 with the check"),
    ("handout_p95", "handout", "#20 hand-out check: checkout p95 with the check vs without", "≤ +150 ms"),
    ("failover_p95", "handout", "#20 failover: wait p95 of checkouts of a pool whose every clone fails",
     "≤ the fallback's clone time + 5 s"),
    ("wait_take_look", "wait_take", "#19 one waiting checkout's look, longest queue measured", "for reference"),
    ("events_delivery_p99", "events", "#21 event stream: a checkout's event at every SSE follower, p99",
     "≤ 1 s, none missed"),
    ("events_follower_cost", "events", "#21 checkouts/s with the most SSE followers vs none", "for reference"),
    ("webhooks_delivery_p99", "webhooks", "#21 webhooks: event -> delivery to a healthy hook, p99",
     "≤ 1 s, none lost"),
    ("webhooks_hanging", "webhooks", "#21 webhooks: checkout p99 with a hanging receiver beside a healthy one",
     "within + 5 %"),
    ("floor_evalsha", "floors", "floor: bare `EVALSHA` round trip (redis-py, service settings)", "for reference"),
    ("floor_http", "floors", "floor: no-op HTTP `GET /api/v3/vm` on the same API process", "for reference"),
    ("floor_ratio", "floors", "checkout ÷ no-op HTTP floor, same processes", "for reference"),
)  # fmt: skip


Judged = tuple[str, bool | None]


def _at_scale(text: str, ok: bool, at_scale: bool) -> Judged:
    return (text, ok) if at_scale else (f"{text} (smaller than the target's scale: not judged)", None)


def _checkout_cell(scenarios: list[dict[str, Any]], size: int, concurrency: int) -> dict[str, Any] | None:
    return next((s for s in scenarios if s["pool_size"] == size and s["concurrency"] == concurrency), None)


def checkouts_per_second(s: dict[str, Any]) -> float:
    """Replies that handed out a VM, per second (a 503 "pool empty" is a reply but no checkout)."""
    failed = sum(n for kind, n in s["errors"].items() if "warm-up" not in kind)
    return (s["requests"] - failed) / s["seconds"] if s["seconds"] else math.nan


def _checkout(fig: dict[str, Any]) -> dict[str, Judged]:
    scenarios = fig["results"]["scenarios"]
    rows: dict[str, Judged] = {}
    base = _checkout_cell(scenarios, 30, 32)
    if base is not None:
        rate = checkouts_per_second(base)
        rows["checkout_rate"] = (f"{rate:,.0f}/s ({base['throughput']:,.0f} replies/s)", rate >= 1500)
        rows["checkout_p99"] = (f"{base['p99_ms']:.1f} ms (p50 {base['p50_ms']:.1f})", base["p99_ms"] <= 20)
    for ratio in fig["results"]["size_ratios"]:
        if ratio["concurrency"] == 32 and ratio["pool_size"] in (1000, 10000):
            text = f"p99 x{ratio['p99']:.2f}, rate x{ratio['throughput']:.2f}"
            rows[f"checkout_{ratio['pool_size']}"] = (text, bool(ratio["ok"]))
    return rows


def _status(fig: dict[str, Any]) -> dict[str, Judged]:
    status = next(r for r in fig["results"] if r["path"].endswith("/status") and r["concurrency"] == 32)
    pools = fig["settings"]["pools"]
    text = f"{status['p99_ms']:.1f} ms at {pools} pools ({status['throughput']:,.0f} req/s)"
    return {"status_p99": _at_scale(text, status["p99_ms"] <= 20, pools >= 1000)}


def _fill(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    p99 = r["during"]["all"]["p99_ms"]
    done = r["made"] >= r["vms"]
    text = f"{p99:.1f} ms over {r['vms']:,} VMs in {r['fill_seconds']:.0f} s" + ("" if done else " (fill unfinished)")
    return {"fill_api_p99": _at_scale(text, p99 <= 25 and done, r["vms"] >= 5000)}


def _manager(fig: dict[str, Any]) -> dict[str, Judged]:
    r, v = fig["results"], fig["results"]["verdicts"]
    full = r["pools"] >= 1000 and r["vms"] >= 10000
    scale = f" at {r['pools']:,} pools / {r['vms']:,} VMs"
    per_changed = f"+{v['trips_per_changed_pool']:.1f} per changed"
    return {
        "manager_cpu": _at_scale(
            f"{v['cpu_ms']:.0f} ms{scale} (quiet, as the running manager; forced full pass "
            f"{v.get('forced_cpu_ms', float('nan')):.0f} ms)",
            v["cpu_ok"],
            full,
        ),
        "manager_trips_vms": _at_scale(
            f"{v['round_trips']:.0f} at {r['vms']:,} VMs vs {v['round_trips_one_vm']:.0f} at {r['pools']:,}",
            v["trips_flat_in_vms"],
            full,
        ),
        "manager_trips_changed": _at_scale(
            f"{v['running_trips_per_pass']:.3f} ({v['running_full_share']:.1%} of passes read their pool); "
            f"a forced pass {v['unchanged_trips_per_pool']:.2f} per pool, {per_changed}",
            v["trips_follow_changes"],
            full,
        ),
        "manager_rss": _at_scale(f"{v['hwm_mib']:.0f} MiB{scale}", v["rss_ok"], full),
    }


def _fill_rate(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    text = (
        f"{r['share']:.0%}: {r['rate']:.1f} of {r['bound']:.1f} VMs/s "
        f"(limit {r['task_limit']}, {r['clone_seconds']:g} s clones, {r['mean_in_flight']:.1f} slots busy)"
    )
    return {"fill_rate": (text, r["share"] >= 0.95)}


def _rss(fig: dict[str, Any]) -> dict[str, Judged]:
    small = next(iter(fig["results"].values()))
    text = f"{small['rss_mib']:.1f} MiB (peak {small['hwm_mib']:.1f})"
    return {"api_rss": (text, small["rss_mib"] <= 80)}


def _floors(fig: dict[str, Any]) -> dict[str, Judged]:
    by_c = {row["concurrency"]: row for row in fig["results"]}

    def cells(phase: str) -> str:
        return "; ".join(
            f"c{c}: p50 {row[phase]['p50_ms']:.2f} / p99 {row[phase]['p99_ms']:.2f} ms, "
            f"{row[phase]['throughput']:,.0f}/s"
            for c, row in sorted(by_c.items())
            if c in (1, 32)
        )

    ratios = "; ".join(
        f"c{c}: p50 x{row['ratios']['p50_vs_noop_http']:.1f}, p99 x{row['ratios']['p99_vs_noop_http']:.1f}, "
        f"rate x{row['ratios']['throughput_vs_noop_http']:.2f}"
        for c, row in sorted(by_c.items())
        if c in (1, 32)
    )
    return {"floor_evalsha": (cells("evalsha"), None), "floor_http": (cells("noop_http"), None),
            "floor_ratio": (ratios, None)}  # fmt: skip


def _cli_startup(fig: dict[str, Any]) -> dict[str, Judged]:
    rows: dict[str, Judged] = {}
    for key, r in zip(("cli_help", "cli_get"), fig["results"].values(), strict=True):
        text = f"{r['cpu_median_s']:.2f} s CPU, {r['wall_median_s']:.2f} s wall (median of {r['rounds']})"
        rows[key] = (text, r["cpu_median_s"] <= 0.3)
    return rows


def _num(value: float | None) -> float:
    """A figure that JSON stored as null (NaN: nothing to divide by) as NaN again."""
    return math.nan if value is None else value


def _serve_scale(fig: dict[str, Any]) -> dict[str, Judged]:
    a, b = fig["results"]["big"], fig["results"]["many"]
    big_scale, many_scale = a["fill"]["vms"] >= 3030, b["pools"] >= 1000
    lend, fill = a["lend"], a["fill"]
    rate, p99 = lend["checkouts_per_second"], lend["checkout"]["p99_ms"]
    empty = sum(lend["checkout"]["errors"].values())
    halves = _num(fill["second_half_rate"]) / _num(fill["first_half_rate"]) if fill["first_half_rate"] else math.nan
    flat = halves >= 0.9
    fill_text = (
        f"{fill['share']:.0%}: {fill['rate']:.0f} of {fill['bound']:.0f} VMs/s in {fill['seconds']:.0f} s; "
        f"second half x{halves:.2f} the first"
    ) + ("" if fill["ready"] >= fill["vms"] else f" (unfinished: {fill['ready']:,} of {fill['vms']:,} at the cap)")
    minutes = b["history_minutes"]
    history_ok = b["history_points"] >= b["pools"] * max(minutes - 1, 0) and minutes >= 2
    return {
        "serve_checkout_rate": _at_scale(f"{rate:,.0f}/s ({empty} x 503)", rate >= 1500, big_scale),
        "serve_checkout_p99": _at_scale(f"{p99:.1f} ms (p50 {lend['checkout']['p50_ms']:.1f})", p99 <= 20, big_scale),
        "serve_status_p99": (f"{a['status']['p99_ms']:.1f} ms ({a['status']['throughput']:,.0f} req/s)",
                             a["status"]["p99_ms"] <= 20),
        "serve_fill": _at_scale(fill_text, fill["share"] >= 0.95 and flat, big_scale),
        "serve_many_warnings": _at_scale(
            f"{b['no_connection_available']} ({b['warnings']} warnings of any kind; "
            f"{a['warnings']} in the 3,000-VM run)",
            b["no_connection_available"] == 0 and a["no_connection_available"] == 0, many_scale),
        "serve_many_history": _at_scale(
            f"{b['history_points']:,} for {b['pools']:,} pools over {minutes} minute boundaries",
            history_ok, many_scale),
        "serve_many_idle_cpu": _at_scale(
            f"{b['idle_cpu_vmpooler']:.1%} over {b['idle_seconds']:.0f} s (redis-server "
            f"{b['idle_cpu_share'].get('redis-server', math.nan):.1%})", b["idle_cpu_vmpooler"] <= 0.05, many_scale),
        "serve_many_trips": _at_scale(
            f"{_num(b.get('round_trips_per_pass', math.nan)):.2f} client round trips per pass over "
            f"{b['passes']:,.0f} passes (Redis's socket reads); {_num(b.get('commands_sent_per_pass', math.nan)):.2f} "
            f"commands sent, {_num(b['commands_per_pass']):.1f} counting those inside scripts",
            _num(b.get("round_trips_per_pass", math.nan)) <= 0.1, many_scale),
        "serve_rss": (", ".join(f"{role} {mib:.0f} MiB" for role, mib in a["rss_mib"].items()), None),
    }  # fmt: skip


def _autoscale(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    auto, clone = r["autoscale"], r["clone_mean_s"]

    def versus(name: str, share: float) -> Judged:
        other = r[name]
        below = 1 - auto["idle_vm_hours"] / other["idle_vm_hours"] if other["idle_vm_hours"] else math.nan
        met = "" if other.get("meets", True) else ", which misses p95 at its largest setting"
        text = (
            f"{below:.0%}: {auto['idle_vm_hours']:,.0f} vs {other['idle_vm_hours']:,.0f} VM-h ({other['setting']}{met})"
        )
        return text, below >= share

    fair = r["fairness"]
    return {
        "autoscale_p95": (f"{auto['wait_p95_s']:.1f} s (attainment {auto['slo_attainment']:.1%})",
                          auto["wait_p95_s"] <= 1),
        "autoscale_p99": (f"{auto['wait_p99_s']:.0f} s (clone mean {clone:.0f} s)", auto["wait_p99_s"] <= clone),
        "autoscale_static": versus("static", 0.30),
        "autoscale_min_idle": versus("min_idle", 0.15),
        "autoscale_idle_factor": versus("idle_factor", 0.15),
        "autoscale_fairness": (f"largest deviation {fair['max_relative_deviation']:.1%} of a weight",
                               fair["max_relative_deviation"] <= 0.05),
    }  # fmt: skip


def _autoscale_replay(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    sim, real = r["simulated"], r["replayed"]

    def close(key: str, unit: str) -> Judged:
        off = (real[key] - sim[key]) / sim[key] if sim[key] else math.nan
        text = f"{off:+.0%}: {real[key]:.1f} vs {sim[key]:.1f} {unit} ({real['requests']} requests, static:{r['size']})"
        return text, abs(off) <= 0.10

    return {"autoscale_replay_p95": close("p95_s", "s"), "autoscale_replay_idle": close("idle_vm_hours", "VM-h")}


def _fast_clone(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    text = (
        f"{r['speedup_p50']:.1f}x: restored p50 {r['restored_p50']:.2f} s, p95 {r['restored_p95']:.2f} s; "
        f"cold p50 {r['cold_p50']:.1f} s ({r['accelerator']})"
    )
    return {"fast_clone_speedup": (text, r["speedup_p50"] >= 5)}


def _handout(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    found: dict[str, Judged] = {}
    if "handout" in r:
        on, off = r["handout"]["on"], r["handout"]["off"]
        growth = on["p95_ms"] - off["p95_ms"]
        found["handout_bad"] = (
            f"{on['bad_vms_handed_out']} of {on['checkouts']:,} with the check, {off['bad_vms_handed_out']} of "
            f"{off['checkouts']:,} without",
            on["bad_vms_handed_out"] == 0,
        )
        found["handout_p95"] = (f"{growth:+.0f} ms ({off['p95_ms']:.0f} -> {on['p95_ms']:.0f} ms)", growth <= 150)
    if "failover" in r:
        f = r["failover"]
        target = f["clone_seconds"] + 5
        found["failover_p95"] = (
            f"{f['p95_wait_s']:.1f} s (clone time {f['clone_seconds']:g} s; served {f['served']})",
            f["p95_wait_s"] <= target,
        )
    return found


def _wait_take(fig: dict[str, Any]) -> dict[str, Judged]:
    rows: list[dict[str, Any]] = fig["results"]
    longest = max(rows, key=lambda row: row["waiting"])
    text = (
        f"{longest['median_ms']:.2f} ms median, p99 {longest['p99_ms']:.2f} ms at {longest['waiting']:,} "
        f"waiting ({longest['redis_ms_per_second']:.0f} ms of Redis per second if all look once)"
    )
    return {"wait_take_look": (text, None)}


def _events(fig: dict[str, Any]) -> dict[str, Judged]:
    rows: list[dict[str, Any]] = fig["results"]
    followed = [row for row in rows if row["followers"] > 0]
    worst = max(followed, key=lambda row: row["delivery_p99_ms"] or math.inf)
    missed = sum(row["missed"] for row in followed)
    p99 = worst["delivery_p99_ms"]
    found: dict[str, Judged] = {
        "events_delivery_p99": (
            f"{_num(p99):.1f} ms with {worst['followers']} follower(s), {missed} missed",
            p99 is not None and p99 <= 1000 and missed == 0,
        ),
    }
    alone = next((row for row in rows if row["followers"] == 0), None)
    most = max(followed, key=lambda row: row["followers"])
    if alone is not None and alone["checkouts_per_s"]:
        change = most["checkouts_per_s"] / alone["checkouts_per_s"] - 1
        found["events_follower_cost"] = (
            f"{change:+.0%}: {alone['checkouts_per_s']:,.0f} -> {most['checkouts_per_s']:,.0f} with "
            f"{most['followers']} followers",
            None,
        )
    return found


def _webhooks(fig: dict[str, Any]) -> dict[str, Judged]:
    r = fig["results"]
    deliveries = r["deliveries"]
    worst = max(d["p99_s"] for d in deliveries)
    lost = sum(d["events"] - d["delivered"] for d in deliveries)
    found: dict[str, Judged] = {
        "webhooks_delivery_p99": (f"{worst:.3f} s, {lost} undelivered", worst <= 1.0 and lost == 0),
    }
    scenarios = list(dict.fromkeys(c["scenario"] for c in r["checkouts"]))
    if len(scenarios) == 2:
        base, hanging = (
            statistics.median(c["p99_ms"] for c in r["checkouts"] if c["scenario"] == name) for name in scenarios
        )
        change = hanging / base - 1 if base else math.nan
        rounds = len(r["checkouts"]) // 2
        found["webhooks_hanging"] = (
            f"{change:+.1%}: median p99 {base:.2f} -> {hanging:.2f} ms over {rounds} round(s)",
            change <= 0.05,
        )
    return found


JUDGES: dict[str, Callable[[dict[str, Any]], dict[str, Judged]]] = {
    "checkout": _checkout,
    "status": _status,
    "api_under_fill": _fill,
    "manager_scale": _manager,
    "fill_rate": _fill_rate,
    "rss": _rss,
    "floors": _floors,
    "cli_startup": _cli_startup,
    "serve_scale": _serve_scale,
    "autoscale": _autoscale,
    "autoscale_replay": _autoscale_replay,
    "fast_clone": _fast_clone,
    "handout": _handout,
    "wait_take": _wait_take,
    "events": _events,
    "webhooks": _webhooks,
}


def targets(figures: Figures) -> list[Target]:
    """Every row of ROWS; a row whose benchmark failed or did not measure it says so (NOT RUN)."""
    found: dict[str, Judged] = {}
    problems: dict[str, str] = {}
    for name, judge in JUDGES.items():
        fig = figures.get(name)
        if fig is None:
            problems[name] = f"not measured: {name} did not run"
            continue
        try:
            found |= judge(fig)
        except (KeyError, StopIteration, TypeError, ValueError, ZeroDivisionError) as exc:
            problems[name] = f"not measured: {name} figures incomplete ({type(exc).__name__}: {exc})"
    rows = []
    for key, benchmark, what, goal in ROWS:
        if key in found:
            rows.append(Target(key, what, goal, *found[key]))
        else:
            rows.append(Target(key, what, goal, problems.get(benchmark, "not measured in this run"), None, ran=False))
    return rows


def as_json(rows: list[Target]) -> list[dict[str, Any]]:
    return [asdict(row) | {"verdict": row.verdict} for row in rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: list[Target], figures: Figures, run: Mapping[str, Any]) -> str:
    """The generated Summary section, markers included."""
    machine = run["machine"]
    lines = [
        START,
        "## Summary (generated by `make bench`; do not edit between the markers)",
        "",
        f"`{run['command']}` on {run['date']} ({run['minutes']:.1f} min, {run['profile']} run). vmpooler at "
        f"`{machine['revision']}`; {machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']}, "
        f"{machine['platform']}. Load average {run['load_before']:.2f} before, {run['load_after']:.2f} after "
        "(the 2 cores are shared with whatever else runs: load above ~1 means noisy figures). Every benchmark "
        "starts its own redis-server and `vmpooler` processes on loopback; the load generator shares the cores.",
        "",
        "| target (issue #9) | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {_cell(r.what)} | {_cell(r.goal)} | {_cell(r.measured)} | **{r.verdict}** |" for r in rows]
    for table in (_checkout_grid, _floor_table):
        try:
            lines += ["", *table(figures)]
        except (KeyError, TypeError, ValueError) as exc:  # a figure missing (None) in a benchmark's file
            lines += ["", f"({table.__name__.strip('_')}: incomplete figures, {type(exc).__name__}: {exc})"]
    lines += [
        "",
        "![checkout latency against concurrency](docs/bench-latency-vs-concurrency.png)",
        "![checkout latency against pool size](docs/bench-latency-vs-pool-size.png)",
        "",
        "Every figure, per benchmark: `bench/results.json`. How each is measured: the sections below.",
        END,
    ]
    return "\n".join(lines)


def _checkout_grid(figures: Figures) -> list[str]:
    fig = figures.get("checkout")
    if fig is None:
        return ["Checkout grid: not measured."]
    scenarios = fig["results"]["scenarios"]
    sizes = sorted({s["pool_size"] for s in scenarios})
    levels = sorted({s["concurrency"] for s in scenarios})
    lines = [
        "Checkouts (`bench/checkout.py`, `vmpooler api` alone): p50 / p99 ms, checkouts/s (503s: pool empty)",
        "",
        "| pool | " + " | ".join(f"c{c}" for c in levels) + " |",
        "|---:|" + "---:|" * len(levels),
    ]
    for size in sizes:
        cells = []
        for c in levels:
            s = _checkout_cell(scenarios, size, c)
            if s is None:
                cells.append("-")
                continue
            empty = sum(n for kind, n in s["errors"].items() if "warm-up" not in kind)
            extra = f" ({empty} x 503)" if empty else ""
            cells.append(f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f}, {checkouts_per_second(s):,.0f}/s{extra}")
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return lines


def _floor_table(figures: Figures) -> list[str]:
    fig = figures.get("floors")
    if fig is None:
        return ["Floors: not measured."]
    lines = [
        "Floors (`bench/floors.py`: one redis-server, one `vmpooler api`, the three measured in turn): "
        "p50 / p99 ms, per second",
        "",
        "| conc. | `EVALSHA` | `GET /api/v3/vm` (no-op) | checkout | checkout ÷ no-op (p50, p99, rate) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in fig["results"]:
        cells = [
            f"{row[p]['p50_ms']:.2f} / {row[p]['p99_ms']:.2f}, {row[p]['throughput']:,.0f}"
            for p in ("evalsha", "noop_http", "checkout")
        ]
        r = row["ratios"]
        ratio = f"x{r['p50_vs_noop_http']:.1f}, x{r['p99_vs_noop_http']:.1f}, x{r['throughput_vs_noop_http']:.2f}"
        lines.append(f"| {row['concurrency']} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def replace_section(document: str, section: str) -> str:
    """``document`` with the text between the markers replaced (put after the title when absent)."""
    if START in document and END in document:
        head, rest = document.split(START, 1)
        return head + section + rest.split(END, 1)[1]
    title, sep, rest = document.partition("\n")
    return f"{title}{sep}\n{section}\n{rest}" if title.startswith("# ") else f"{section}\n\n{document}"
