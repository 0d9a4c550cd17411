"""Signed webhooks against real HTTP receivers and a real Redis: signatures, retries, isolation, dead letters,
redelivery, and a killed manager's pending deliveries sent by another worker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.processes import VMPOOLER, VmpoolerProcess, write_config
from tests.support.servers import ApiThread, make_store
from tests.support.waiting import until_sync
from tests.support.webhooks import DispatcherThread, Receiver, emit
from vmpooler.config import parse_settings
from vmpooler.config.webhooks import WebhookSettings, secret_key, webhook_problems
from vmpooler.errors import ConfigError
from vmpooler.store import keys
from vmpooler.store.webhooks import WebhookStore
from vmpooler.webhooks import verify

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="  # base64 of "secret-key-for-tests-only"
KEY = secret_key(SECRET)
FAST = {"retry_base_s": 0.05, "block_ms": 50}


def hook(name: str, url: str, **extra: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"name": name, "url": url, "secret": SECRET, **extra})


@pytest.fixture
def client(redis_port: int) -> Iterator[redis.Redis]:
    connection = redis.Redis(port=redis_port)
    yield connection
    connection.close()


def pending(client: redis.Redis, hook: str) -> int:
    return int(client.xpending(keys.EVENT_STREAM, keys.webhook_group(hook))["pending"])


def test_deliveries_are_signed_filtered_and_retried_after_500(client: redis.Redis, redis_port: int) -> None:
    with (
        Receiver("ok", fail_first=2) as receiver,
        DispatcherThread([hook("ci", receiver.url, events=["vm."], pools=["deb"])], redis_port, **FAST),
    ):
        emit(client, "pool.resized", size=3)  # not a vm. event
        emit(client, "vm.ready", pool="other")  # not this pool
        wanted = emit(client, "vm.checked_out", vm="vm7", owner="alice", lifetime=2)
        until_sync(lambda: receiver.answered(200), "a delivery answered 200", timeout=10)
        # every entry of the hook's group is acknowledged, the skipped ones too
        until_sync(lambda: pending(client, "ci") == 0, "every entry acknowledged", timeout=10)
        attempts = list(receiver.received)
        client.delete(keys.EVENT_STREAM)  # the group goes with it (a FLUSHALL): the worker makes it again
        until_sync(lambda: client.exists(keys.EVENT_STREAM), "the group made again", timeout=10)
        later = emit(client, "vm.returned", vm="vm7")
        until_sync(lambda: len(receiver.answered(200)) == 2, "the next event delivered", timeout=10)
        assert receiver.answered(200)[1].event["id"] == later
    assert [item.status for item in attempts] == [500, 500, 200]
    assert {item.headers["webhook-id"] for item in attempts} == {wanted}  # one message id across retries
    final = attempts[-1]
    assert verify(KEY, final.headers, final.body)
    assert not verify(secret_key("whsec_b3RoZXI="), final.headers, final.body)
    assert not verify(KEY, final.headers, final.body.replace(b"vm7", b"vm8"))
    assert final.event == {
        "id": wanted,
        "type": "vm.checked_out",
        "pool": "deb",
        "vm": "vm7",
        "owner": "alice",
        "at": pytest.approx(time.time(), abs=30),
        "data": {"lifetime": 2},
    }


async def forget_idle(redis_port: int, hook: str) -> int:
    store = make_store(redis_port)
    try:
        return await WebhookStore(store.client).forget_idle_consumers(hook, keep="nobody", idle_ms=0)
    finally:
        await store.close()


def test_a_hanging_receiver_delays_no_other_hook(client: redis.Redis, redis_port: int) -> None:
    with (
        Receiver("hang") as stuck,
        Receiver("ok") as healthy,
        DispatcherThread(
            [hook("stuck", stuck.url, timeout_s=30, concurrency=2), hook("healthy", healthy.url)], redis_port, **FAST
        ),
    ):
        sent = {}
        for n in range(10):
            sent[emit(client, "vm.ready", vm=f"vm{n}")] = time.time()
            time.sleep(0.05)
        until_sync(lambda: len(healthy.answered(200)) == 10, "10 deliveries to the healthy hook", timeout=10)
        assert len(stuck.received) == 2  # its two slots are held; it reads nothing more meanwhile
    delays = [item.at - sent[item.headers["webhook-id"]] for item in healthy.answered(200)]
    assert max(delays) < 1.0, delays


def test_dead_letters_are_shown_to_admins_and_redelivered(client: redis.Redis, redis_port: int) -> None:
    with Receiver("fail") as receiver:
        hooks = [{"name": "ops", "url": receiver.url, "secret": SECRET, "max_attempts": 3}]
        raw = {"pools": [], "auth": {"provider": "dummy", "admins": ["root"]}, "webhooks": hooks}
        settings, _ = parse_settings(raw, env={})
        with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as api:
            admin = api.post("/api/v3/token", auth=("root", "pw")).json()["token"]
            user = api.post("/api/v3/token", auth=("alice", "pw")).json()["token"]
            with DispatcherThread(settings.webhooks, redis_port, **FAST):
                dead_id = emit(client, "vm.failed", vm="vm3", reason="clone timed out")

                def dead_letters() -> list[dict[str, Any]]:
                    reply = api.get("/api/v3/webhooks", headers={"X-AUTH-TOKEN": admin})
                    letters: list[dict[str, Any]] = reply.json()["webhooks"]["ops"]["dead_letters"]
                    return letters

                (letter,) = until_sync(dead_letters, "a dead letter", timeout=10).value
                assert letter["event"]["id"] == dead_id and letter["error"] == "answered 500"
                assert len(receiver.received) == 3
                shown = api.get("/api/v3/webhooks", headers={"X-AUTH-TOKEN": admin}).json()["webhooks"]["ops"]
                assert shown["stats"]["dead"] == "1" and shown["stats"]["failed_attempts"] == "2"
                assert [entry["attempt"] for entry in shown["recent"]] == [3, 2, 1]
                assert api.get("/api/v3/webhooks").status_code == 401
                refused = api.get("/api/v3/webhooks", headers={"X-AUTH-TOKEN": user})
                assert refused.status_code == 403 and refused.json()["ok"] is False
                missing = api.post("/api/v3/webhooks/ops/redeliver/1-1", headers={"X-AUTH-TOKEN": admin})
                assert missing.status_code == 404 and "neither a dead letter" in missing.json()["error"]
                last = api.post("/api/v3/webhooks/ops/redeliver/+", headers={"X-AUTH-TOKEN": admin})
                assert last.status_code == 404  # not "the stream's last entry", as XRANGE would read it

                receiver.mode = "ok"  # the receiver is fixed; an admin sends the event again, from the CLI
                cli = [VMPOOLER, "webhooks", "--url", server.url, "--token", admin, "--json"]
                listed = json.loads(subprocess.run(cli, capture_output=True, check=True, timeout=30).stdout)
                assert listed["ops"]["dead_letters"][0]["event"]["id"] == dead_id
                redeliver = [*cli[:2], "redeliver", "ops", dead_id, *cli[2:]]
                queued = subprocess.run(redeliver, capture_output=True, check=True, timeout=30).stdout
                assert json.loads(queued) == {"queued": dead_id}
                until_sync(lambda: receiver.answered(200), "the redelivery", timeout=10)
                assert dead_letters() == []
    assert receiver.answered(200)[0].event["id"] == dead_id


def test_a_killed_managers_pending_deliveries_are_sent_by_another(
    client: redis.Redis, redis_port: int, tmp_path: Path
) -> None:
    with Receiver("hang") as receiver:
        hooks = [{"name": "ci", "url": receiver.url, "secret": SECRET, "timeout_s": 30, "concurrency": 3}]
        raw = {"pools": [], "redis": {"server": "127.0.0.1", "port": redis_port}, "webhooks": hooks}
        manager = VmpoolerProcess("manager", write_config(tmp_path / "vmpooler.yaml", raw), tmp_path / "logs")
        manager.start()
        try:
            until_sync(
                lambda: client.exists(keys.EVENT_STREAM) and client.xinfo_groups(keys.EVENT_STREAM),
                "the manager's webhook group",
                timeout=30,
            )
            sent = [emit(client, "vm.ready", vm=f"vm{n}") for n in range(5)]
            until_sync(lambda: len(receiver.received) == 3, "3 deliveries in flight at the manager", timeout=15)
            manager.kill()  # kill -9 with three deliveries pending in the group and two never read
        finally:
            manager.stop()
        assert client.xpending(keys.EVENT_STREAM, keys.webhook_group("ci"))["pending"] == 3
        receiver.mode = "ok"
        (settings,) = [hook("ci", receiver.url)]
        with DispatcherThread([settings], redis_port, claim_idle_s=1.0, **FAST):
            until_sync(lambda: len(receiver.answered(200)) >= 5, "every event delivered by the survivor", timeout=15)
            until_sync(lambda: pending(client, "ci") == 0, "every delivery acknowledged", timeout=10)
    assert {item.headers["webhook-id"] for item in receiver.answered(200)} == set(sent)
    assert all(verify(KEY, item.headers, item.body) for item in receiver.answered(200))
    # the dead manager's consumer holds nothing now: it is forgotten, the consumer holding entries is not
    consumers = {c["name"].decode() for c in client.xinfo_consumers(keys.EVENT_STREAM, keys.webhook_group("ci"))}
    assert len(consumers) == 2
    client.xclaim(keys.EVENT_STREAM, keys.webhook_group("ci"), "holder", 0, [sent[0]], force=True)  # type: ignore[no-untyped-call]
    assert asyncio.run(forget_idle(redis_port, "ci")) == 2
    left = client.xinfo_consumers(keys.EVENT_STREAM, keys.webhook_group("ci"))
    assert [c["name"].decode() for c in left] == ["holder"]


def test_a_wrong_webhook_entry_names_its_key_path() -> None:
    bad = [{"name": "a", "url": "ftp://x", "secret": SECRET}, {"name": "b", "url": "http://x"}]
    with pytest.raises(ConfigError) as raised:
        parse_settings({"webhooks": bad}, env={})
    problems = "\n".join(raised.value.problems)
    assert "webhooks[0].url" in problems and "webhooks[1]" in problems and "secret_env" in problems
    settings, _ = parse_settings({"webhooks": [{"name": "a", "url": "http://x", "secret_env": "HOOK_SECRET"}]}, env={})
    assert webhook_problems(settings.webhooks, env={}) == ["webhooks.a.secret_env: the variable HOOK_SECRET is not set"]
    assert webhook_problems(settings.webhooks, env={"HOOK_SECRET": "s3cret-value"}) == []
