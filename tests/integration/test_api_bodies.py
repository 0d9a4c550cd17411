"""Hypothesis sends arbitrary bodies to every route that reads one: never a 5xx, always the JSON error shape."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pools import settings_with
from tests.support.servers import ApiThread, make_store

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=12,
)
BODIES = JSON.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200)
ROUTES = [
    ("POST", "/api/v3/vm"),
    ("POST", "/vm"),
    ("PUT", "/api/v3/vm/vm0"),
    ("POST", "/api/v3/ondemandvm"),
    ("POST", "/api/v3/config/poolsize"),
    ("POST", "/api/v3/config/pooltemplate"),
    ("POST", "/api/v3/poolreset"),
]


@pytest.fixture(scope="module")
def api(redis_server: Any) -> Iterator[httpx.Client]:
    import asyncio

    store = make_store(redis_server.port)

    async def fill() -> None:
        for i in range(200):
            await store.create_pending("deb", f"vm{i}", {})
            await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)
        await store.close()

    asyncio.run(fill())
    config = settings_with(
        [{"name": "deb", "alias": "debian", "template": "t/deb", "size": 5}], experimental_features=True
    )
    with ApiThread(config, redis_server.port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ROUTES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_any_body_gets_a_json_answer_never_a_server_error(
    api: httpx.Client, method: str, path: str, body: bytes
) -> None:
    reply = api.request(method, path, content=body)
    assert reply.status_code < 500 or reply.status_code == 503, (reply.status_code, reply.text)
    payload = reply.json()
    if reply.status_code >= 400:
        assert payload["ok"] is False and isinstance(payload["error"], str) and payload["error"]
    else:
        assert payload["ok"] is True
