"""Checkouts that wait their turn (docs/waiting.md), against a real API over HTTP and a real Redis."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.test_api import fill
from tests.integration.test_cli_client import run
from tests.support.servers import ApiThread
from tests.support.waiting import until, until_sync
from vmpooler.client import Client
from vmpooler.config import Settings, parse_settings
from vmpooler.states import VMState
from vmpooler.store.redis import Store
from vmpooler.store.waiting import WaitTicket


def waiting_settings(**sections: Any) -> Settings:
    raw = {
        "auth": {"provider": "dummy"},
        "pools": [
            {"name": "deb", "template": "t/deb", "size": 5},
            {"name": "win", "template": "t/win", "size": 2},
        ],
        **sections,
    }
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture
def server(redis_port: int) -> Iterator[ApiThread]:
    with ApiThread(waiting_settings(), redis_port) as api:
        yield api


def token(url: str, user: str) -> str:
    reply = httpx.post(f"{url}/api/v3/token", auth=(user, f"{user}-password"))
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def queued(url: str, pool: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    reply = httpx.get(f"{url}/api/v3/vm/{pool}/queue", headers=headers)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def test_a_waiting_checkout_is_served_when_a_vm_becomes_ready(server: ApiThread, store: Store) -> None:
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(httpx.post, f"{server.url}/api/v3/vm/deb", headers={"Prefer": "wait=20"}, timeout=30)
        until_sync(lambda: queued(server.url, "deb")["waiting"] == 1, "the request queued", timeout=10)
        time.sleep(0.3)
        (name,) = await fill(store, "deb", 1)
        reply = waiting.result(30)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["deb"]["hostname"].startswith(name) and body["waited"] >= 0.3
    assert float(reply.headers["Vmpooler-Waited"]) >= 0.3
    assert reply.headers["Preference-Applied"] == "wait=20"
    assert await store.members("deb", VMState.RUNNING) == {name}
    assert queued(server.url, "deb")["waiting"] == 0


async def test_a_wait_that_runs_out_is_a_503_with_retry_after_and_takes_nothing(
    server: ApiThread, store: Store
) -> None:
    await fill(store, "deb", 1)
    started = time.monotonic()
    reply = httpx.post(f"{server.url}/api/v3/vm/deb+deb?wait=1", timeout=10)
    assert reply.status_code == 503 and reply.json()["ok"] is False
    assert "within 1 s" in reply.json()["error"] and reply.headers["Retry-After"] == "5"
    assert time.monotonic() - started >= 1.0
    assert len(await store.members("deb", VMState.READY)) == 1
    assert queued(server.url, "deb")["waiting"] == 0


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?wait=601", {}), ("?wait=-1", {}), ("?wait=soon", {}), ("", {"Prefer": "wait=9999"}), ("?wait=nan", {})],
)
def test_a_wait_out_of_range_is_a_json_400(server: ApiThread, query: str, headers: dict[str, str]) -> None:
    reply = httpx.post(f"{server.url}/api/v3/vm/deb{query}", headers=headers)
    assert reply.status_code == 400
    assert reply.json()["ok"] is False and "0 to 600" in reply.json()["error"]


@pytest.mark.parametrize("prefix", ["/api/v3", "/api/v2", "/api/v1", ""])
async def test_without_a_wait_checkouts_answer_as_before(server: ApiThread, store: Store, prefix: str) -> None:
    empty = httpx.post(f"{server.url}{prefix}/vm/win")
    assert empty.status_code == 503 and "Retry-After" not in empty.headers and "waited" not in empty.json()
    await fill(store, "win", 1)
    taken = httpx.post(f"{server.url}{prefix}/vm", json={"win": 1})
    assert taken.status_code == 200 and "waited" not in taken.json() and "Vmpooler-Waited" not in taken.headers
    waited = httpx.post(f"{server.url}{prefix}/vm/win?wait=0")
    assert waited.status_code == 503


def test_a_wait_for_several_pools_is_refused_with_what_to_do(server: ApiThread) -> None:
    reply = httpx.post(f"{server.url}/api/v3/vm?wait=5", json={"deb": 1, "win": 1})
    assert reply.status_code == 400 and "one pool" in reply.json()["error"]


async def test_a_client_that_disconnects_gives_up_its_place_and_takes_nothing(server: ApiThread, store: Store) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/api/v3/vm/deb?wait=60", timeout=1.0)
    until_sync(lambda: queued(server.url, "deb")["waiting"] == 0, "the place given up", timeout=5)
    await fill(store, "deb", 1)
    time.sleep(0.5)
    assert len(await store.members("deb", VMState.READY)) == 1
    assert await store.members("deb", VMState.RUNNING) == set()


async def test_a_waiter_whose_process_died_is_dropped_by_its_heartbeat(server: ApiThread, store: Store) -> None:
    now = time.time()
    dead = WaitTicket("dead-waiter", "deb", "ghost", "ghost", 1.0, 1)
    assert await store.queues.join(dead, now - 20, now - 5, 1000)  # its heartbeat lapsed 5 s ago
    (name,) = await fill(store, "deb", 1)
    reply = httpx.post(f"{server.url}/api/v3/vm/deb?wait=5", timeout=10)
    assert reply.status_code == 200 and reply.json()["deb"]["hostname"].startswith(name)
    assert queued(server.url, "deb")["waiting"] == 0


async def test_owners_share_by_weight_and_a_small_request_skips_a_big_backlog(redis_port: int, store: Store) -> None:
    settings = waiting_settings(
        priorities={"classes": {"high": 2}, "members": {"alice": "high"}, "groups": {"ci": ["carol", "dave"]}}
    )
    with ApiThread(settings, redis_port) as api:
        tokens = {user: token(api.url, user) for user in ("alice", "bob", "carol", "dave")}
        async with httpx.AsyncClient(base_url=api.url, timeout=90) as client:

            def wait_for(user: str, count: int) -> asyncio.Task[httpx.Response]:
                spec = "+".join(["deb"] * count)
                headers = {"X-AUTH-TOKEN": tokens[user]}
                return asyncio.create_task(client.post(f"/api/v3/vm/{spec}?wait=60", headers=headers))

            async def waiting(n: int) -> None:
                await until(lambda: _queued(client), f"{n} requests queued", done=lambda w: w == n, timeout=10)

            # bob's backlog (8 VMs at once) came first; carol's one VM must not wait behind it
            big = wait_for("bob", 8)
            await waiting(1)
            small = wait_for("carol", 1)
            await waiting(2)
            await fill(store, "deb", 2)
            assert (await asyncio.wait_for(small, 10)).status_code == 200
            assert not big.done()
            big.cancel()  # its client leaves: the place is given up
            await waiting(0)
            assert (await client.post("/api/v3/vm/deb")).status_code == 200  # the second VM, bob's no more

            # three owners at overload: alice (weight 2), bob, and the group ci (carol and dave, one owner)
            tasks: dict[str, list[asyncio.Task[httpx.Response]]] = {u: [] for u in ("alice", "bob", "carol", "dave")}
            for _ in range(4):
                for user, mine in tasks.items():
                    mine.append(wait_for(user, 1))
                    await waiting(sum(map(len, tasks.values())))
            for batch in range(8):
                await fill_named(store, "deb", 1, f"fair{batch}")
                await until(lambda: _served(tasks), f"VM {batch + 1} handed out", done=lambda n, b=batch: n == b + 1)
            per_user = {
                user: sum(t.done() and t.result().status_code == 200 for t in mine) for user, mine in tasks.items()
            }
            for mine in tasks.values():
                for task in mine:
                    task.cancel()
    assert per_user["alice"] == 4  # weight 2 of 4: half of the 8 VMs
    assert per_user["bob"] == 2 and per_user["carol"] + per_user["dave"] == 2


async def _queued(client: httpx.AsyncClient, pool: str = "deb") -> int:
    return int((await client.get(f"/api/v3/vm/{pool}/queue")).json()["waiting"])


async def _served(tasks: dict[str, list[asyncio.Task[httpx.Response]]]) -> int:
    return sum(t.done() and t.result().status_code == 200 for mine in tasks.values() for t in mine)


async def fill_named(store: Store, pool: str, count: int, stem: str) -> list[str]:
    names = [f"{stem}-{i}" for i in range(count)]
    for name in names:
        assert await store.create_pending(pool, name, {"clone": "x"})
        assert await store.mark_ready(pool, name, time.time(), 1.0)
    return names


async def test_quotas_refuse_with_a_403_naming_the_quota_and_the_usage(redis_port: int, store: Store) -> None:
    settings = waiting_settings(
        quotas={
            "default": {"pools": {"win": 1}},
            "owners": {"alice": {"running": 2}, "qa": {"pools": {"win": 1, "deb": 3}}},
        },
        priorities={"groups": {"qa": ["bob", "eve"]}},
        auth={"provider": "dummy", "admins": ["root"]},
    )
    await fill(store, "deb", 5)
    await fill(store, "win", 2)
    with ApiThread(settings, redis_port) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        alice = {"X-AUTH-TOKEN": token(api.url, "alice")}
        hosts = [client.post("/api/v3/vm/deb", headers=alice).json()["deb"]["hostname"] for _ in range(2)]
        refused = client.post("/api/v3/vm", json={"deb": 1}, headers=alice)
        assert refused.status_code == 403
        body = refused.json()
        assert body["ok"] is False and body["quota"] == "running" and body["held"] == 2 and body["limit"] == 2
        assert "'alice' may hold 2 VMs overall and holds 2" in body["error"]
        waiting = client.post("/api/v3/vm/deb?wait=30", headers=alice)  # refused at once, not after the wait
        assert waiting.status_code == 403 and waiting.json()["quota"] == "running"
        assert client.delete(f"/api/v3/vm/{hosts[0]}", headers=alice).status_code == 200
        assert client.post("/api/v3/vm/deb", headers=alice).status_code == 200

        # the group qa is one owner: one win VM between bob and eve
        bob, eve = ({"X-AUTH-TOKEN": token(api.url, user)} for user in ("bob", "eve"))
        assert client.post("/api/v3/vm/win", headers=bob).status_code == 200
        over = client.post("/api/v3/vm/win", headers=eve)
        assert (
            over.status_code == 403
            and over.json()["quota"] == "win"
            and "'qa' may hold 1 VMs of 'win'" in over.json()["error"]
        )
        assert client.post("/api/v3/vm/deb", headers=eve).status_code == 200
        assert client.post("/api/v3/vm/win").status_code == 200  # without a token: no owner, no quota

        # admins see each listed owner's usage in /status; nobody else does
        root = {"X-AUTH-TOKEN": token(api.url, "root")}
        usage = client.get("/api/v3/status", headers=root).json()["quotas"]
        assert usage["alice"] == {"running": 2, "limit": 2, "pools": {}}
        qa = {"win": {"running": 1, "limit": 1}, "deb": {"running": 1, "limit": 3}}
        assert usage["qa"] == {"running": 2, "limit": None, "pools": qa}
        assert "quotas" not in client.get("/api/v3/status", headers=alice).json()
        assert "quotas" not in client.get("/api/v3/status", headers={"X-AUTH-TOKEN": "bogus"}).json()
    assert len(await store.members("deb", VMState.RUNNING)) == 3


async def test_status_shows_each_pools_queue(server: ApiThread, store: Store) -> None:
    alice = {"X-AUTH-TOKEN": token(server.url, "alice")}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        first = asyncio.create_task(client.post("/api/v3/vm/deb+deb?wait=20"))
        await until(lambda: _queued(client), "one waiting", done=lambda n: n == 1, timeout=10)
        second = asyncio.create_task(client.post("/api/v3/vm/deb?wait=20", headers=alice))
        await until(lambda: _queued(client), "two waiting", done=lambda n: n == 2, timeout=10)
        view = (await client.get("/api/v3/vm/deb/queue", headers=alice)).json()
        # fair order is by finish tag: alice's 1 VM finishes before the anonymous owner's 2, though later
        assert view["waiting"] == 2 and view["waiting_vms"] == 3 and view["position"] == 1
        assert [(r["vms"], r["yours"]) for r in view["requests"]] == [(1, True), (2, False)]
        assert view["oldest_wait"] > 0
        assert (await client.get("/api/v3/vm/deb/queue")).json()["position"] is None
        await asyncio.sleep(1.1)  # the status report is cached for a second
        status = (await client.get("/api/v3/status")).json()
        assert status["pools"]["deb"]["queue"] == 2 and status["pools"]["win"]["queue"] == 0
        await fill(store, "deb", 3)
        assert (await asyncio.wait_for(first, 10)).status_code == 200
        assert (await asyncio.wait_for(second, 10)).status_code == 200
    assert (httpx.get(f"{server.url}/api/v3/vm/nope/queue")).status_code == 404


async def test_the_client_and_the_cli_wait_their_turn(server: ApiThread, store: Store) -> None:
    alice = token(server.url, "alice")
    env = {"VMPOOLER_URL": server.url, "VMPOOLER_TOKEN": alice}
    cli = asyncio.create_task(asyncio.to_thread(run, env, "get", "deb", "--wait", "20", "--json"))
    async with httpx.AsyncClient(base_url=server.url) as client:
        await until(lambda: _queued(client), "the CLI's request queued", done=lambda n: n == 1, timeout=15)
    with Client(server.url, alice) as sync_client:
        assert sync_client.queue("deb")["position"] == 1
        waiter = asyncio.create_task(asyncio.to_thread(sync_client.checkout, "deb", 20))
        await asyncio.sleep(1.5)  # the CLI shows the place it saw
        (first,) = await fill_named(store, "deb", 1, "cli")
        outcome = await asyncio.wait_for(cli, 20)
        assert outcome.returncode == 0, outcome.stderr
        assert [vm["hostname"] for vm in json.loads(outcome.stdout)] == [first]
        assert re.search(r"^place 1 of [12] for deb$", outcome.stderr, re.MULTILINE), outcome.stderr
        (second,) = await fill_named(store, "deb", 1, "client")
        (vm,) = await asyncio.wait_for(waiter, 20)
        assert vm.hostname == second


async def test_the_event_stream_tells_each_wait_from_queued_to_served_or_gave_up(
    server: ApiThread, store: Store
) -> None:
    refused = httpx.post(f"{server.url}/api/v3/vm/deb?wait=0.5", timeout=10)
    assert refused.status_code == 503
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        waiting = asyncio.create_task(client.post("/api/v3/vm/win?wait=20"))
        await until(lambda: _queued(client, "win"), "one waiting", done=lambda n: n == 1, timeout=10)
        await fill(store, "win", 1)
        assert (await asyncio.wait_for(waiting, 10)).status_code == 200
    dead = WaitTicket("dead-one", "deb", "ghost", "ghost", 1.0, 2)
    now = time.time()
    assert await store.queues.join(dead, now - 20, now - 5, 100)
    assert await store.queues.view("deb", now) == []  # dropped for its lapsed heartbeat
    waits = [e for e in await store.eventlog.after("0") if e.type.startswith("checkout.")]
    seen = [(e.type, e.pool, e.data.get("reason")) for e in waits]
    assert seen == [
        ("checkout.queued", "deb", None),
        ("checkout.gave_up", "deb", "budget"),
        ("checkout.queued", "win", None),
        ("checkout.served", "win", None),
        ("checkout.queued", "deb", None),
        ("checkout.gave_up", "deb", "heartbeat"),
    ]
    assert waits[3].data["waited"] > 0 and waits[3].data["vms"] == 1
    assert waits[5].owner == "ghost"
