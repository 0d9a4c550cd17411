"""Issue 14, item 13: names are checked whole: "team\\n" is no tag name, "abc\\n" no request id, and no
name with a trailing newline reaches Redis (a ``$`` in a pattern also matches before a final newline)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.security.served import fill
from tests.support.pools import settings_with
from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.errors import ConfigError
from vmpooler.store import keys


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    settings = settings_with([{"name": "deb", "template": "t/deb", "size": 3}])
    with ApiThread(settings, redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    fill(redis_port, "deb", 3)
    with shared_api_client(server) as client:
        yield client


def keys_with_newlines(redis_port: int) -> list[bytes]:
    return [key for key in redis.Redis(port=redis_port).keys("*") if b"\n" in key]


@pytest.mark.parametrize(
    "tags", [{"team\n": "qa"}, {"team": "qa\n"}, {"team": "q\ra"}, {"team": "a\tb"}, {"\nteam": "qa"}]
)
def test_a_tag_with_a_control_character_is_refused(api: httpx.Client, redis_port: int, tags: dict[str, str]) -> None:
    reply = api.put("/api/v3/vm/deb-vm0", json={"tags": tags})
    assert reply.status_code == 400, reply.text
    assert not [field for field in redis.Redis(port=redis_port).hkeys(keys.vm("deb-vm0")) if b"tag:" in field]


def test_an_ondemand_request_id_with_a_newline_is_refused(api: httpx.Client, redis_port: int) -> None:
    reply = api.post("/api/v3/ondemandvm", json={"deb": 1, "request_id": "abc\n"})
    assert reply.status_code == 400, reply.text
    assert keys_with_newlines(redis_port) == []


@pytest.mark.parametrize("path", ["/api/v3/vm/deb-vm0%0A", "/api/v3/ondemandvm/abc%0A"])
def test_a_name_with_a_newline_in_the_url_is_no_name(api: httpx.Client, path: str) -> None:
    assert api.get(path).status_code in (400, 404)
    assert api.delete(path).status_code in (400, 401, 404)


def test_a_pool_name_with_a_newline_is_refused(api: httpx.Client, redis_port: int) -> None:
    assert api.post("/api/v3/vm", json={"deb\n": 1}).status_code in (400, 404)
    assert api.post("/api/v3/vm/deb%0A").status_code in (400, 404)
    assert api.get("/api/v3/poolstat?pool=deb").json()["pools"]["deb"]["ready"] == 3
    with pytest.raises(ConfigError, match=r"pools\[0\]\.name"):
        settings_with([{"name": "deb\n", "template": "t/deb", "size": 1}])
