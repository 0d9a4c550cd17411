"""``:prometheus: names: original``: the original's families (read from its own source) are what ours scrape as."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.pools import dummy, run_until
from tests.support.servers import ApiThread
from vmpooler.config import parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.metrics import build_metrics, prometheus_of
from vmpooler.states import VMState
from vmpooler.store.redis import Store

HERE = Path(__file__).resolve()
SCRIPT = HERE.parents[1] / "support" / "original_promstats.rb"


def _original_source() -> Path:
    """The original's source tree (``$VMPOOLER_ORIGINAL``, default ``../shared/upstream`` beside the checkout)."""
    root = Path(os.environ.get("VMPOOLER_ORIGINAL") or HERE.parents[3] / "shared" / "upstream")
    source = root / "vmpooler"
    if not (source / "lib" / "vmpooler" / "metrics" / "promstats.rb").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the original vmpooler is not at {root} (set VMPOOLER_ORIGINAL)")
        pytest.skip(f"the original vmpooler is not at {root} (set VMPOOLER_ORIGINAL)")
    return source


def _original_families(prefix: str) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        ["ruby", str(SCRIPT), str(_original_source()), prefix], capture_output=True, text=True, timeout=60, check=True
    )
    return {family["name"]: family for family in json.loads(result.stdout)}


def _families(text: str) -> dict[str, set[str]]:
    """Family name -> label names, from an exposition (histograms by their base name)."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(family.name, set()).update(k for k in sample.labels if k != "le")
    return found


async def test_each_original_name_we_expose_is_the_originals_with_its_labels(
    redis_port: int, store: Store, inventory_file: Path
) -> None:
    raw = {
        "config": {"check_loop_delay_min": 0.05, "usage_stats": True},
        "pools": [{"name": "deb", "template": "t", "size": 2}],
        "prometheus": {"names": "original", "prefix": "ci", "prometheus_prefix": "vmp"},
    }
    settings, _ = parse_settings(raw, env={})
    metrics = build_metrics(settings)
    manager = Manager(settings, store, {"dummy": dummy(inventory_file)}, ready_poll_interval=0.02, metrics=metrics)

    sink = prometheus_of(metrics)
    assert sink is not None

    async def full() -> bool:
        # a VM is ready in Redis a moment before the manager observes its boot time: wait for both
        boots = sink.registry.get_sample_value(
            "vmp_time_to_ready_state_count", {"poolname": "deb", "vmpooler_instance": "ci"}
        )
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 2 and (boots or 0) >= 2

    await run_until(manager, full)
    metrics.error("markedasfailed", "deb")
    metrics.destroyed("deb", 3.0)
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        host = client.post("/api/v3/vm/deb").json()["deb"]["hostname"]
        assert client.post("/api/v3/vm/nope").status_code == 404
        assert client.delete(f"/api/v3/vm/{host}").status_code == 200
        scraped_text = client.get("/prometheus").text
    ours = {**_families(generate_latest(sink.registry).decode()), **_families(scraped_text)}

    original = _original_families("vmp")
    for name, labels in ours.items():
        assert name in original, f"{name} is not a family the original registers"
        assert labels == set(original[name]["labels"]), name
    expected = {
        "vmp_checkout_success", "vmp_checkout_invalid", "vmp_delete_success", "vmp_ready", "vmp_running",
        "vmp_clone", "vmp_time_to_ready_state", "vmp_destroy", "vmp_vmpooler_clone", "vmp_vmpooler_destroy",
        "vmp_vmpooler_errors", "vmp_errors_markedasfailed", "vmp_http_requests_total",
        "vmp_http_request_duration_seconds",
    }  # fmt: skip
    assert expected <= set(ours)
    assert "vmp_checkouts" not in scraped_text  # names: original exposes only the original's names
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped_text)
        for s in family.samples
    }
    assert samples[("vmp_checkout_success", (("poolname", "deb"), ("vmpooler_instance", "ci")))] == 1
    assert samples[("vmp_http_requests_total", (("code", "200"), ("method", "post"), ("path", "/api/v3/vm")))] == 1
    for name in ("vmp_clone", "vmp_time_to_ready_state"):  # the original's buckets
        assert sink.registry.get_sample_value(
            f"{name}_bucket", {"poolname": "deb", "vmpooler_instance": "ci", "le": "+Inf"}
        )
    buckets = sorted(
        float(s.labels["le"])
        for family in text_string_to_metric_families(generate_latest(sink.registry).decode())
        if family.name == "vmp_clone"
        for s in family.samples
        if s.name == "vmp_clone_bucket" and s.labels["le"] != "+Inf"
    )
    assert buckets == original["vmp_clone"]["buckets"]
