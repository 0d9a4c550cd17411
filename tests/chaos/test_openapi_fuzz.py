"""Schemathesis sends thousands of generated requests (every phase, stateful chains included) to a running
`vmpooler serve` whose manager is filling pools at the same time: no server error, no reply off the spec."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chaos import scenario
from tests.chaos.census import take_census
from tests.chaos.figures import Figures
from tests.support.processes import VmpoolerProcess, wait_until, write_config
from vmpooler.states import VMState

pytestmark = pytest.mark.slow

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SIZES = {"debian": 6, "centos": 4}
MIN_REQUESTS = 1000
#: seconds the fuzzing run may take (it takes ~10 s alone on 2 cores)
BUDGET = 90


def interactions(cassette: Path) -> list[dict[str, Any]]:
    """Every request schemathesis sent, with its phase and the response (None when there was none)."""
    with cassette.open() as stream:
        recorded: list[dict[str, Any]] = yaml.load(stream, Loader=yaml.CSafeLoader)["http_interactions"]
    return recorded


@pytest.mark.timeout(BUDGET + 60)
def test_generated_requests_find_no_server_error(chaos_redis_port: int, tmp_path: Path, figures: Figures) -> None:
    raw = scenario.config(chaos_redis_port, tmp_path / "inventory.json", SIZES, experimental_features=True)
    raw[":pools:"][0]["alias"] = ["deb"]
    config = write_config(tmp_path / "vmpooler.yaml", raw)
    serve = VmpoolerProcess("serve", config, tmp_path / "logs").start()
    try:

        def full() -> bool:
            census = take_census(chaos_redis_port, list(SIZES))
            return all(census.counts(pool)[VMState.READY] == size for pool, size in SIZES.items())

        wait_until(full, 60, pause=0.25, what="pools full")
        started = time.monotonic()
        run = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{serve.url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                str(int(scenario.knob("CHAOS_FUZZ_EXAMPLES", 6))),
                "--seed",
                str(scenario.seed()),
                # one worker: with threads, CPython 3.11.7's ast (used by hypothesis to describe
                # lambdas) can fail with "AST constructor recursion depth mismatch" (gh-106905)
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--suppress-health-check",
                "all",
                "--report",
                "vcr",
                "--report-vcr-path",
                str(tmp_path / "cassette.yaml"),
            ],
            capture_output=True,
            text=True,
            timeout=BUDGET + 30,
            check=False,
            cwd=tmp_path,
        )
        seconds = time.monotonic() - started
        assert serve.alive(), "the server died under fuzzing"
    finally:
        assert serve.stop() == 0

    sent = interactions(tmp_path / "cassette.yaml")
    codes = Counter(int(i["response"]["status"]["code"]) if i.get("response") else None for i in sent)
    phases = Counter(i["phase"]["name"] for i in sent)
    server_errors = sum(n for code, n in codes.items() if code is None or code >= 500)
    figures.record("fuzz.requests", len(sent))
    figures.record("fuzz.stateful_requests", phases["stateful"])
    figures.record("fuzz.server_errors", server_errors)
    figures.record("fuzz.seconds", seconds)
    assert run.returncode == 0, run.stdout[-8000:]
    assert len(sent) >= MIN_REQUESTS, f"only {len(sent)} requests: {phases}"
    assert phases["stateful"] > 0, "the stateful phase sent nothing"
    assert server_errors == 0, codes
    assert seconds <= BUDGET
