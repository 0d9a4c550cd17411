"""The OpenAPI description is complete and true: schemathesis fuzzes every route of every version over a
real socket and finds no 5xx, no undocumented status and no reply off its schema; the docs page is offline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.pools import settings_with
from tests.support.servers import ApiThread
from vmpooler.store.redis import Store

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error(redis_port: int, store: Store, tmp_path: Path) -> None:
    settings = settings_with(
        [{"name": "deb", "alias": "debian", "template": "t", "size": 2}], experimental_features=True
    )

    async def manager_alive() -> None:  # a healthy service: a manager heartbeats while the fuzz runs
        while True:
            await store.heartbeat("fuzz-manager", "test", 300, time.time())
            await asyncio.sleep(5)

    heartbeats = asyncio.create_task(manager_alive())
    for i in range(40):
        await store.create_pending("deb", f"vm{i}", {})
        await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)
    with ApiThread(settings, redis_port) as api:
        run = await asyncio.to_thread(
            subprocess.run,
            [
                SCHEMATHESIS,
                "run",
                f"{api.url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                os.environ.get("SCHEMATHESIS_EXAMPLES", "15"),
                "--seed",
                os.environ.get("SCHEMATHESIS_SEED", "1"),
                # one worker: with threads, CPython 3.11.7's ast (used by hypothesis to describe
                # lambdas) can fail with "AST constructor recursion depth mismatch" (gh-106905)
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )
    heartbeats.cancel()
    assert run.returncode == 0, run.stdout[-8000:]


def test_docs_page_works_offline(redis_port: int) -> None:
    with ApiThread(settings_with([{"name": "deb", "template": "t", "size": 1}]), redis_port) as api:
        page = httpx.get(f"{api.url}/api/docs")
        assert page.status_code == 200 and "/api/static/swagger/swagger-ui-bundle.js" in page.text
        assert "cdn" not in page.text.lower()
        js = httpx.get(f"{api.url}/api/static/swagger/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        spec = httpx.get(f"{api.url}/openapi.json").json()
        for version in ("/api/v3", "/api/v2", "/api/v1", ""):
            assert f"{version}/vm" in spec["paths"] and f"{version}/token" in spec["paths"]
        assert "400" in spec["paths"]["/api/v3/vm"]["post"]["responses"]
