"""Built-in history: a scripted hour of checkouts, boots and failures becomes minute and hour points."""

from __future__ import annotations

import time

import httpx

from tests.support.pools import settings_with
from tests.support.servers import ApiThread
from vmpooler.manager.history import HistorySampler, fold, percentile
from vmpooler.store.redis import Store

POOLS = [{"name": "deb-12", "template": "t", "size": 3}, {"name": "cent-9", "template": "t", "size": 2}]
HOUR = (int(time.time()) // 3600 - 2) * 3600  # a whole hour, two hours ago


async def make_ready(store: Store, pool: str, name: str, now: float, boot: float) -> None:
    assert await store.create_pending(pool, name, {})
    assert await store.mark_ready(pool, name, now, boot)


async def test_minutes_are_sampled_and_hours_folded(store: Store) -> None:
    settings = settings_with(POOLS)
    sampler = HistorySampler(settings, store)
    for minute in range(60):
        now = HOUR + minute * 60 + 10
        await make_ready(store, "deb-12", f"vm{minute}", now, boot=10.0 + minute % 3)
        if minute % 2 == 0:
            taken = await store.checkout([["deb-12"]], now)
            assert isinstance(taken, list)
        if minute == 30:
            await store.ondemand.record_clone_failure("cent-9", "boom", permanent=False, now=now)
        assert await sampler.run_once(now=now + 60)  # the next minute writes this one
        assert not await sampler.run_once(now=now + 61)  # once only, whichever manager asks
    minutes = await store.history.points("deb-12", "1m", HOUR)
    minutes = [p for p in minutes if p["t"] < HOUR + 3600]
    assert len(minutes) == 60
    assert minutes[0]["checkouts"] == 1 and minutes[1]["checkouts"] == 0
    assert minutes[0]["boots"] == 1 and minutes[0]["boot_p50"] == 10.0
    assert minutes[-1]["running"] == 30  # levels are read when the point is written
    (hour,) = await store.history.points("deb-12", "1h", HOUR)
    assert hour["t"] == HOUR and hour["checkouts"] == 30 and hour["boots"] == 60
    assert hour["boot_p90"] == 12.0
    (cent_hour,) = await store.history.points("cent-9", "1h", HOUR)
    assert cent_hour["failures"] == 1 and cent_hour["checkouts"] == 0


async def test_refusals_clone_times_and_all_pools_percentiles(store: Store, redis_port: int) -> None:
    """A checkout refused because the pool is empty counts against that pool (the provisioner's
    retries do not); clone times become a mean per minute; the all-pools series has the percentiles
    of every boot together, which no mix of the pools' own percentiles gives."""
    settings = settings_with(POOLS)
    now = HOUR + 10
    assert await store.checkout([["cent-9"]], now) == 0
    assert await store.checkout([["cent-9"], ["deb-12"]], now) == 0
    assert await store.checkout([["cent-9"]], now, ondemand=("r1", "cent-9", "cent-9")) == 0
    for boot in (10.0, 11.0, 12.0):
        await make_ready(store, "deb-12", f"d{boot}", now, boot)
    await make_ready(store, "cent-9", "c1", now, 100.0)
    await store.record_clone_time("deb-12", "d10.0", now, 4.0)
    await store.record_clone_time("deb-12", "d11.0", now, 6.0)
    assert await HistorySampler(settings, store).run_once(now=now + 60)
    (cent,) = await store.history.points("cent-9", "1m", HOUR)
    (deb,) = await store.history.points("deb-12", "1m", HOUR)
    assert cent["refused"] == 2 and deb["refused"] == 0
    assert deb["clones"] == 2 and deb["clone_avg"] == 5.0 and cent["clones"] == 0
    (every,) = await store.history.points(None, "1m", HOUR)
    assert every["boots"] == 4 and every["boot_p50"] == 12.0 and every["boot_p90"] == 100.0
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        reply = client.get("/api/v3/history?range=7d&series=overall")
        assert reply.status_code == 200 and reply.headers["etag"]
        again = client.get("/api/v3/history?range=7d&series=overall", headers={"If-None-Match": reply.headers["etag"]})
        assert again.status_code == 304
        day = client.get("/api/v3/history?range=1d&series=overall").json()["overall"]
        deb_day = client.get("/api/v3/history?range=1d&pool=deb-12").json()["overall"]
    assert [p["boot_p50"] for p in deb_day if p["t"] == HOUR] == [11.0]  # a pool's own, for its chart
    (point,) = [p for p in day if p["t"] == HOUR]
    assert point["refused"] == 2 and point["clones"] == 2 and point["clone_avg"] == 5.0
    assert point["boot_p50"] == 12.0 and point["boot_p90"] == 100.0  # not the worst pool's p50 of 100


def test_fold_and_percentile() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0
    point = fold([{"t": 0, "ready": 2, "checkouts": 1, "boots": 0}, {"t": 60, "ready": 4, "checkouts": 2}], 0)
    assert point["ready"] == 3.0 and point["checkouts"] == 3 and point["boot_p50"] == 0.0


async def test_history_and_dashboard_feeds(store: Store, redis_port: int) -> None:
    settings = settings_with(POOLS)
    sampler = HistorySampler(settings, store)
    now = time.time()
    await make_ready(store, "deb-12", "a", now - 300, 20.0)
    await make_ready(store, "cent-9", "b", now - 300, 30.0)
    for back in (5, 4, 3, 2):
        await sampler.run_once(now=now - back * 60)
    taken = await store.checkout([["cent-9"]], now)
    assert isinstance(taken, list)
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        history = client.get("/api/v3/history?range=1h").json()
        assert history["resolution"] == "1m" and len(history["pools"]["deb-12"]) == 4
        assert history["overall"][-1]["ready"] == 2
        assert client.get("/api/v3/history?range=2y").status_code == 400
        assert client.get("/api/v3/history?pool=nope").status_code == 404
        pool = client.get("/dashboard/stats/vmpooler/pool?history=1").json()
        assert pool["deb-12"]["size"] == 3 and pool["deb-12"]["ready"] == 1 and pool["deb-12"]["history"] == [1] * 4
        assert "history" not in client.get("/dashboard/stats/vmpooler/pool").json()["deb-12"]
        running = client.get("/dashboard/stats/vmpooler/running").json()
        assert running == {"deb": {"running": 0}, "cent": {"running": 1}}
        users = client.get("/dashboard/stats/vmpooler/users").json()
        assert users["users"] == {"anonymous": {"cent-9": 1}}
        redirect = client.get("/")
        assert redirect.status_code == 302 and redirect.headers["location"] == "/dashboard/"


async def test_overall_only_history_leaves_out_each_pool(store: Store, redis_port: int) -> None:
    settings = settings_with(POOLS)
    await HistorySampler(settings, store).run_once(now=time.time())
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        body = client.get("/api/v3/history?range=1h&series=overall").json()
    assert "pools" not in body and len(body["overall"]) == 1


async def test_a_minute_of_many_pools_costs_a_few_round_trips(store: Store) -> None:
    """The sampler takes and writes every pool's minute in one pipeline each, not one per pool."""
    pools = [{"name": f"p{i:02d}", "template": "t", "size": 1} for i in range(40)]
    now = HOUR + 20 * 60 + 10  # not an hour's last minute: no hour points folded
    for i, pool in enumerate(pools):
        await make_ready(store, pool["name"], f"vm{i}", now, boot=float(i))
    before = int((await store.client.info("stats"))["total_reads_processed"])
    assert await HistorySampler(settings_with(pools), store).run_once(now=now + 60)
    # one per pool was 3 x 40 = 120 here (take, then write, each pool's minute)
    assert int((await store.client.info("stats"))["total_reads_processed"]) - before < 15
    points = [await store.history.points(pool["name"], "1m", HOUR) for pool in pools]
    assert [(p["boots"], p["boot_p50"], p["ready"]) for (p,) in points] == [(1, float(i), 1) for i in range(40)]
    assert await store.history.take_minute("p07", now // 60 * 60) == ({}, [])  # taken: the waiting area is empty
