"""Issue 14, "Also": hypothesis sends every route that reads a body deep, large and odd-unicode bodies:
never a 5xx, and whenever the answer is a 4xx, nothing in Redis (no VM, no pool, no override) changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.served import fill
from tests.support.pools import settings_with
from tests.support.servers import ApiThread

# every code point, lone surrogates included (json.dumps writes them as \ud800 escapes)
TEXT = st.text(st.characters(codec=None), max_size=40)
KEYS = st.sampled_from(["deb", "debian", "lifetime", "tags", "request_id", "team", ""]) | TEXT
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats()
    | TEXT
    | st.sampled_from(["1", "2", "100000000000000000000", "1e20", "t/deb", "/etc/shadow", "-1", " 3"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)


def nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + ("1" if opener != "[" else "") + closer * depth).encode()


BODIES = (
    JSON.map(lambda value: json.dumps(value).encode())
    | st.builds(nested, st.integers(0, 3000), st.sampled_from(["[", '{"a":']))
    | st.builds(lambda n, c: b'{"deb": "' + c.encode() * n + b'"}', st.integers(0, 70_000), st.sampled_from("xé\x00"))
    | st.builds(lambda n: b'{"deb": ' + b"9" * n + b"}", st.integers(1, 6000))
    | st.binary(max_size=300)
)
ROUTES = [
    ("POST", "/api/v3/vm"),
    ("POST", "/api/v1/vm"),
    ("PUT", "/api/v3/vm/deb-vm0"),
    ("POST", "/api/v3/ondemandvm"),
    ("POST", "/api/v3/config/poolsize"),
    ("POST", "/api/v3/config/pooltemplate"),
    ("POST", "/api/v3/config/clonetarget"),
    ("POST", "/api/v3/poolreset"),
]


@pytest.fixture(scope="module")
def api(redis_server: Any) -> Iterator[tuple[httpx.Client, redis.Redis]]:
    # what earlier tests left (keys that expire while this runs) must not read as a change
    redis.Redis(port=redis_server.port).flushall()
    fill(redis_server.port, "deb", 300)
    config = settings_with(
        [{"name": "deb", "alias": "debian", "template": "t/deb", "size": 5}], experimental_features=True
    )
    with ApiThread(config, redis_server.port) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, redis.Redis(port=redis_server.port)


def everything(db: redis.Redis) -> dict[bytes, Any]:
    """Every key and its value, as far as a change to a VM, a pool or an override would show."""
    found: dict[bytes, Any] = {}
    for key in db.scan_iter(count=1000):
        kind = db.type(key)
        if kind == b"hash":
            found[key] = db.hgetall(key)
        elif kind == b"set":
            found[key] = db.smembers(key)
        elif kind == b"list":
            found[key] = db.lrange(key, 0, -1)
        elif kind == b"zset":
            found[key] = db.zrange(key, 0, -1, withscores=True)
        elif kind == b"string":
            found[key] = db.get(key)
    return found


@pytest.mark.parametrize(("method", "path"), ROUTES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_no_body_gets_a_5xx_and_a_refusal_changes_nothing(
    api: tuple[httpx.Client, redis.Redis], method: str, path: str, body: bytes
) -> None:
    client, db = api
    before = everything(db)
    reply = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code < 500, (reply.status_code, reply.text[:300])
    payload = reply.json()
    if reply.status_code >= 400:
        assert payload["ok"] is False and payload["error"]
        assert everything(db) == before, f"{method} {path} answered {reply.status_code} but changed Redis"
    else:
        assert payload["ok"] is True
