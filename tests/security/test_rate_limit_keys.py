"""Rate limits cannot be dodged (issue 14.7): X-Forwarded-For counts only from trusted proxies, and every
route that checks a password spends the token_creation budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import VmpoolerProcess, write_config


def api_process(tmp_path: Path, redis_port: int, rate_limits: dict[str, Any]) -> VmpoolerProcess:
    """`vmpooler api` as deployed (its own uvicorn settings), with dummy auth."""
    config = write_config(
        tmp_path / "vmpooler.yaml",
        {
            ":redis:": {"server": "127.0.0.1", "port": redis_port},
            ":pools:": [{"name": "deb", "template": "t/deb", "size": 1}],
            ":auth:": {"provider": "dummy"},
            ":rate_limits:": {"enabled": True, **rate_limits},
        },
    )
    return VmpoolerProcess("api", config, tmp_path).start()


@pytest.fixture
def api(tmp_path: Path, redis_port: int) -> Iterator[httpx.Client]:
    limits = {"global_per_ip": {"limit": 6}, "token_creation": {"limit": 3}}
    server = api_process(tmp_path, redis_port, limits)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def test_a_client_cannot_pick_its_address_with_forwarded_headers(api: httpx.Client) -> None:
    codes = [
        api.get("/api/v3/vm", headers={"X-Forwarded-For": f"198.51.100.{i}", "Forwarded": f"for=198.51.100.{i}"})
        for i in range(7)
    ]
    assert [reply.status_code for reply in codes] == [200] * 6 + [429]


def test_every_password_check_spends_the_token_budget(api: httpx.Client) -> None:
    alice = ("alice", "s3cr3t")
    token = api.post("/api/v3/token", auth=alice).json()["token"]
    assert api.get("/api/v3/token", auth=("alice", "guess1")).status_code == 200  # dummy: any password but the name
    assert api.delete(f"/api/v3/token/{token}", auth=("alice", "guess2")).status_code == 200
    refused = [
        api.get("/api/v3/token", auth=alice),
        api.delete("/api/v3/token/anything", auth=alice),
        api.get("/api/v3/vm", headers={"Authorization": "Basic YWxpY2U6Z3Vlc3M="}),
    ]
    assert [reply.status_code for reply in refused] == [429, 429, 429]
    assert all("password checks" in reply.json()["error"] for reply in refused)
    assert api.get("/api/v3/vm").status_code == 200  # other requests keep their own budget
