"""Every route answers with a trailing slash too, directly (as the original's Sinatra ``/route/?``), never a 307."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_api import demo_settings, fill
from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.store.redis import Store


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    with ApiThread(demo_settings(), redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    ["/api/v3/status", "/api/v3/summary/boot", "/api/v3/vm", "/api/v3/config", "/status", "/api/v1/vm",
     "/dashboard/stats/vmpooler/pool", "/api/v3/poolstat"],
)  # fmt: skip
def test_get_with_a_slash_is_the_same_reply(api: httpx.Client, path: str) -> None:
    plain, slashed = api.get(path), api.get(path + "/")
    assert plain.status_code == slashed.status_code == 200

    def shape(body: object) -> object:
        return sorted(body) if isinstance(body, dict) else body

    assert shape(slashed.json()) == shape(plain.json())


async def test_checkout_and_return_with_a_slash(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 2)
    checkout = api.post("/api/v3/vm/deb/")
    assert checkout.status_code == 200, checkout.text
    host = checkout.json()["deb"]["hostname"]
    assert api.get(f"/api/v3/vm/{host}/").json()["ok"] is True
    assert api.delete(f"/api/v3/vm/{host}/").json() == {"ok": True}


def test_the_dashboard_page_keeps_its_slash(api: httpx.Client) -> None:
    assert api.get("/dashboard/").status_code == 200
    assert api.get("/dashboard").headers["location"] == "/dashboard/"
    assert api.get("/api/v3/nosuch/").status_code == 404
