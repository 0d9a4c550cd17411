"""``/summary`` figures from a scripted sequence of clones, boots and tags on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from tests.support.pools import settings_with
from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.store import keys
from vmpooler.store.redis import Store

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    settings = settings_with([{"name": "deb", "template": "t", "size": 1}])
    with ApiThread(settings, redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


async def script(store: Store) -> None:
    for vm, seconds in (("a", 2.0), ("b", 4.0)):
        await store.stats.record("clone", "deb", vm, seconds, YESTERDAY.timestamp())
    await store.stats.record("boot", "deb", "a", 10.0, YESTERDAY.timestamp())
    for vm, seconds in (("c", 3.0), ("d", 5.0)):
        await store.stats.record("clone", "deb", vm, seconds, TODAY.timestamp())
    await store.stats.record("clone", "cent", "e", 7.0, TODAY.timestamp())
    await store.tag_vm("c", {"team": "qa", "url": "x.com"}, TODAY.timestamp())
    await store.tag_vm("d", {"team": "qa"}, TODAY.timestamp())
    await store.tag_vm("e", {"team": "dev"}, TODAY.timestamp())


async def test_summary_over_two_days(api: httpx.Client, store: Store) -> None:
    await script(store)
    body = api.get(f"/api/v3/summary?from={YESTERDAY.date()}&to={TODAY.date()}").json()
    assert [d["date"] for d in body["daily"]] == [str(YESTERDAY.date()), str(TODAY.date())]
    two = {"average": 3.0, "min": 2.0, "max": 4.0, "total": 6.0}
    # per pool as the original: duration.pool.<pool> and count.pool.<pool>
    assert body["daily"][0]["clone"] == {
        "duration": {**two, "pool": {"deb": two}},
        "count": {"total": 2, "pool": {"deb": {"total": 2}}},
    }
    assert body["daily"][1]["clone"]["duration"] == {
        "average": 5.0,
        "min": 3.0,
        "max": 7.0,
        "total": 15.0,
        "pool": {
            "cent": {"average": 7.0, "min": 7.0, "max": 7.0, "total": 7.0},
            "deb": {"average": 4.0, "min": 3.0, "max": 5.0, "total": 8.0},
        },
    }
    assert body["clone"] == {
        "duration": {
            "average": 4.2,
            "min": 2.0,
            "max": 7.0,
            "total": 21.0,
            "pool": {
                "cent": {"average": 7.0, "min": 7.0, "max": 7.0, "total": 7.0},
                "deb": {"average": 3.5, "min": 2.0, "max": 5.0, "total": 14.0},
            },
        },
        "count": {"average": 2.5, "min": 2, "max": 3, "total": 5, "pool": {"cent": {"total": 1}, "deb": {"total": 4}}},
    }
    assert body["boot"]["count"] == {"average": 0.5, "min": 0, "max": 1, "total": 1, "pool": {"deb": {"total": 1}}}
    assert body["daily"][1]["boot"]["count"]["total"] == 0
    # and each tag's total of tagged VMs, as the original
    assert body["tag"] == {"team": {"qa": 2, "dev": 1, "total": 3}, "url": {"x.com": 1, "total": 1}}
    # the default range is today only
    assert [d["date"] for d in api.get("/summary").json()["daily"]] == [str(TODAY.date())]


async def test_summary_sections_and_keys(api: httpx.Client, store: Store) -> None:
    await script(store)
    clone = api.get(f"/api/v3/summary/clone?from={YESTERDAY.date()}").json()
    assert set(clone) == {"clone", "daily"} and clone["clone"]["count"]["total"] == 5
    assert set(clone["daily"][0]) == {"date", "clone"}
    duration = api.get(f"/api/v3/summary/clone/duration?from={YESTERDAY.date()}").json()
    assert duration["clone"]["duration"]["total"] == 21.0
    team = api.get("/api/v3/summary/tag/team").json()
    assert team["tag"] == {"team": {"qa": 2, "dev": 1, "total": 3}}
    assert api.get("/api/v3/summary/nope").status_code == 404


async def test_days_written_by_the_original_are_read(api: httpx.Client, redis_port: int) -> None:
    client = redis.Redis(port=redis_port)
    client.hset(keys.boot_times(TODAY.date()), mapping={"deb:x": "30.5", "deb:y": "10.5"})
    boot = api.get("/api/v3/summary/boot").json()["boot"]
    figures = {"average": 20.5, "min": 10.5, "max": 30.5, "total": 41.0}
    assert boot["duration"] == {**figures, "pool": {"deb": figures}}


async def test_a_day_both_wrote_is_read_whole(api: httpx.Client, store: Store, redis_port: int) -> None:
    """During a switch-over the original writes a day's per-VM hash without our aggregate; then ours adds."""
    redis.Redis(port=redis_port).hset(keys.boot_times(TODAY.date()), mapping={"deb:x": "30.0"})
    await store.stats.record("boot", "deb", "y", 10.0, TODAY.timestamp())
    boot = api.get("/api/v3/summary/boot").json()["boot"]
    assert boot["count"]["total"] == 2 and boot["duration"]["total"] == 40.0


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2015-3-1", "Invalid date format '2015-3-1', must match YYYY-MM-DD."),
        ("from=yesterday", "Invalid date format"),
        ("from=2020-01-02&to=2020-01-01", "'to' cannot come before 'from'"),
        ("from=2999-01-01&to=2999-01-02", "'from' must be in the past"),
        ("from=2000-01-01", "at most 366 days"),
    ],
)
def test_bad_dates(api: httpx.Client, query: str, words: str) -> None:
    reply = api.get(f"/api/v3/summary?{query}")
    assert reply.status_code == 400
    assert reply.json()["ok"] is False and words in reply.json()["error"]
