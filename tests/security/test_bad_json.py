"""Issue 14, item 9: every body that is not acceptable JSON is a JSON 400: nesting past the depth limit
(60,000 brackets once raised RecursionError), 5,000-digit integers, lone surrogates."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.security.served import fill
from tests.support.pools import settings_with
from tests.support.servers import ApiThread

ROUTES = [
    ("POST", "/api/v3/vm"),
    ("PUT", "/api/v3/vm/deb-vm0"),
    ("POST", "/api/v3/ondemandvm"),
    ("POST", "/api/v3/config/poolsize"),
    ("POST", "/api/v3/config/pooltemplate"),
    ("POST", "/api/v3/config/clonetarget"),
    ("POST", "/api/v3/poolreset"),
]
BODIES = {
    "30000 bracket pairs": b"[" * 30_000 + b"]" * 30_000,
    "60000 open brackets": b"[" * 60_000,
    "deep objects": b'{"a":' * 40 + b"1" + b"}" * 40,
    "5000-digit integer": b'{"deb": ' + b"9" * 5000 + b"}",
    "5000-digit integer alone": b"9" * 5000,
    "lone surrogate key": b'{"\\ud800": 1}',
    "lone surrogate value": b'{"deb": "\\udfff"}',
    "lone surrogate tag": b'{"tags": {"team": "\\ud800"}}',
    "raw surrogate bytes": b'{"\xed\xa0\x80": 1}',
    "NaN": b'{"deb": NaN}',
    "huge exponent": b'{"deb": 1e400}',
    "lifetime huge integer": b'{"lifetime": ' + b"9" * 5000 + b"}",
}


@pytest.fixture(scope="module")
def api(redis_server: object) -> Iterator[httpx.Client]:
    port = redis_server.port  # type: ignore[attr-defined]
    fill(port, "deb", 3)
    settings = settings_with([{"name": "deb", "template": "t/deb", "size": 3}], experimental_features=True)
    with ApiThread(settings, port) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("name", list(BODIES))
def test_bad_json_is_a_json_400(api: httpx.Client, method: str, path: str, name: str) -> None:
    reply = api.request(method, path, content=BODIES[name], headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, (name, reply.status_code, reply.text[:200])
    assert reply.json()["ok"] is False and reply.json()["error"]


def test_a_body_nested_within_the_limit_is_read(api: httpx.Client) -> None:
    host = api.post("/api/v3/vm", json={"deb": 1}).json()["deb"]["hostname"]
    reply = api.put(f"/api/v3/vm/{host}", json={"tags": {"team": "qa"}})
    assert reply.status_code == 200, reply.text
