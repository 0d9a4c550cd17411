"""``GET /api/v3/events`` (server-sent events, resumed after a disconnect) and ``GET /api/v3/audit``,
over a real socket against a real Redis."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.support.servers import ApiThread
from tests.support.waiting import until_sync
from vmpooler.config import Settings, parse_settings
from vmpooler.store import keys
from vmpooler.store.redis import Store

ALICE = ("alice", "s3cr3t")
ROOT = ("root", "toor")


def settings(auth: bool, **config: Any) -> Settings:
    raw = {
        "config": {"events_keepalive_seconds": 0.3, **config},
        "pools": [{"name": "deb", "template": "t/deb", "size": 5}, {"name": "cent", "template": "t/cent", "size": 5}],
        **({"auth": {"provider": "dummy", "admins": ["root"]}} if auth else {}),
    }
    parsed, _ = parse_settings(raw, env={})
    return parsed


@contextlib.contextmanager
def served(config: Settings, redis_port: int) -> Iterator[httpx.Client]:
    with ApiThread(config, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def open_api(redis_port: int) -> Iterator[httpx.Client]:
    with served(settings(False, events_max_streams=2), redis_port) as client:
        yield client


@pytest.fixture
def auth_api(redis_port: int) -> Iterator[httpx.Client]:
    with served(settings(True, experimental_features=True), redis_port) as client:
        yield client


async def ready(store: Store, pool: str, count: int) -> None:
    for i in range(count):
        assert await store.create_pending(pool, f"{pool}{i}", {})
        assert await store.mark_ready(pool, f"{pool}{i}", time.time(), 1.0)


class SSE:
    """Reads an open stream's events and comments as they come."""

    def __init__(self, reply: httpx.Response) -> None:
        self.lines = reply.iter_lines()
        self.comments: list[str] = []

    def events(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        event_id = ""
        for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["id"] == event_id
                found.append(event)
                if len(found) == count:
                    break
        return found

    def comment(self, text: str) -> None:
        for line in self.lines:
            if line == text:
                return
            assert not line.startswith("data: "), line


async def test_follow_filter_and_resume_after_a_disconnect(open_api: httpx.Client, store: Store) -> None:
    await ready(store, "deb", 3)
    await ready(store, "cent", 1)
    with open_api.stream("GET", "/api/v3/events", params={"since": "0", "type": "vm.checked_out"}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert open_api.post("/api/v3/vm/deb+cent").status_code == 200
        first, second = SSE(reply).events(2)
    assert {first["pool"], second["pool"]} == {"deb", "cent"}
    assert first["type"] == second["type"] == "vm.checked_out"
    # disconnected; meanwhile more happens; resuming from the last id seen misses nothing, repeats nothing
    assert open_api.post("/api/v3/vm/deb").status_code == 200
    assert open_api.post("/api/v3/vm/deb").status_code == 200
    headers = {"Last-Event-ID": second["id"]}
    params = {"pool": "deb", "type": "vm."}  # a prefix
    with open_api.stream("GET", "/api/v3/events", headers=headers, params=params) as reply:
        stream = SSE(reply)
        events = stream.events(2)
        assert [e["type"] for e in events] == ["vm.checked_out", "vm.checked_out"]
        assert all(e["id"] > second["id"] for e in events)
        # quiet: a keep-alive comment every events_keepalive_seconds, and no other event of the filter
        stream.comment(": keep-alive")


def test_streams_beyond_the_cap_get_a_json_503_and_a_bad_resume_point_a_400(open_api: httpx.Client) -> None:
    assert open_api.get("/api/v3/events", params={"since": "yesterday"}).status_code == 400
    with open_api.stream("GET", "/api/v3/events") as one, open_api.stream("GET", "/api/v3/events") as two:
        assert one.status_code == two.status_code == 200
        third = open_api.get("/api/v3/events")
        assert third.status_code == 503
        assert third.json()["ok"] is False and "events_max_streams" in third.json()["error"]
    # the slots are given back when clients go away
    until_sync(lambda: free_slot(open_api), "a stream slot given back")


def free_slot(api: httpx.Client) -> bool:
    with api.stream("GET", "/api/v3/events") as reply:
        return reply.status_code == 200


def test_with_auth_a_token_is_needed(auth_api: httpx.Client) -> None:
    assert auth_api.get("/api/v3/events").status_code == 401
    token = auth_api.post("/api/v3/token", auth=ALICE).json()["token"]
    with auth_api.stream("GET", "/api/v3/events", params={"since": "0"}, headers={"X-AUTH-TOKEN": token}) as reply:
        assert reply.status_code == 200
        (created,) = SSE(reply).events(1)
    assert created["type"] == "token.created" and created["owner"] == "alice"
    assert token not in json.dumps(created)


def test_the_audit_trail_says_who_did_what_and_what_was_refused(auth_api: httpx.Client) -> None:
    alice = auth_api.post("/api/v3/token", auth=ALICE).json()["token"]
    root = auth_api.post("/api/v3/token", auth=ROOT).json()["token"]
    assert (
        auth_api.delete(f"/api/v3/token/{alice}", auth=("mallory", "mallory")).status_code == 401
    )  # dummy: a wrong password
    assert (
        auth_api.post("/api/v3/config/pooltemplate", json={"deb": "x"}, headers={"X-AUTH-TOKEN": alice}).status_code
        == 403
    )
    assert auth_api.get("/api/v3/status").status_code == 200  # a read: not recorded
    assert auth_api.get("/api/v3/audit", headers={"X-AUTH-TOKEN": alice}).status_code == 403  # admins only
    auth_api.get("/api/v3/audit", headers={"X-AUTH-TOKEN": root})

    def entries() -> list[dict[str, Any]]:
        reply = auth_api.get("/api/v3/audit", headers={"X-AUTH-TOKEN": root})
        assert reply.status_code == 200
        found: list[dict[str, Any]] = reply.json()["entries"]
        return found

    until_sync(lambda: len(entries()) >= 5, "five audit entries")
    seen = [(e["user"], e["method"], e["route"], e["status"]) for e in reversed(entries())]
    assert seen == [
        ("alice", "POST", "/api/v3/token", 200),
        ("root", "POST", "/api/v3/token", 200),
        ("mallory", "DELETE", "/api/v3/token/{token}", 401),
        ("alice", "POST", "/api/v3/config/pooltemplate", 403),
        ("alice", "GET", "/api/v3/audit", 403),
    ]
    every = json.dumps(entries())
    assert alice not in every and root not in every  # hints only
    refused = next(e for e in entries() if e["status"] == 401)
    assert refused["target"].startswith("sha256:") and refused["address"] == "127.0.0.1"
    mine = auth_api.get("/api/v3/audit", params={"user": "alice", "limit": "1"}, headers={"X-AUTH-TOKEN": root})
    assert [e["route"] for e in mine.json()["entries"]] == ["/api/v3/audit"]


def test_a_rate_limited_request_is_in_the_audit_trail(redis_port: int) -> None:
    config = settings(False)
    config = config.model_copy(update={"rate_limits": {"enabled": True, "global_per_ip": {"limit": 2, "period": 60}}})
    with served(config, redis_port) as api:
        statuses = [api.get("/api/v3/vm").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # the reads that went through are not recorded; the refusal is
        limited = until_sync(
            lambda: store_entries(redis_port), "the 429 recorded", done=lambda found: len(found) == 1
        ).value
    assert [(e["method"], e["status"], e["address"]) for e in limited] == [("GET", 429, "127.0.0.1")]


def store_entries(redis_port: int) -> list[dict[str, str]]:
    client = redis.Redis(port=redis_port, decode_responses=True)
    try:
        return [dict(fields, status=int(fields["status"])) for _, fields in client.xrange(keys.AUDIT_STREAM)]
    finally:
        client.close()
