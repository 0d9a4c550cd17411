"""The Python clients (sync and async) and the pytest plugin against the real API over a real Redis."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.pools import dummy, manager_for, run_until
from tests.support.servers import ApiThread
from vmpooler.client import VM, AsyncClient, Client
from vmpooler.client.pytest_plugin import VMFactory
from vmpooler.config import Settings, parse_settings
from vmpooler.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServerUnreachable,
    ServiceUnavailable,
    Unauthorized,
)
from vmpooler.states import VMState
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

DOMAIN = "client.example"
ALICE = ("alice", "s3cr3t")
BOB = ("bob", "hunter2")

pytest_plugins = ["pytester"]


def client_settings() -> Settings:
    raw = {
        "auth": {"provider": "dummy"},
        "config": {"vm_lifetime_auth": 2, "max_lifetime_upper_limit": 48, "check_loop_delay_min": 0.05},
        "dns_configs": {"ex": {"domain": DOMAIN}},
        "pools": [
            {"name": "deb", "alias": ["debian"], "template": "t/deb", "size": 0, "dns_plugin": "ex"},
            {"name": "cent", "template": "t/cent", "size": 0, "dns_plugin": "ex"},
        ],
    }
    settings, _ = parse_settings(raw, env={})
    return settings


async def fill(store: Store, pool: str, count: int) -> list[str]:
    names = [f"{pool}-vm{i}" for i in range(count)]
    for name in names:
        assert await store.create_pending(pool, name, {"clone": "x"})
        assert await store.mark_ready(pool, name, time.time(), 1.0)
    return names


@pytest.fixture
def server(redis_port: int) -> Iterator[ApiThread]:
    with ApiThread(client_settings(), redis_port) as api:
        yield api


def new_token(server: ApiThread, who: tuple[str, str] = ALICE) -> str:
    with Client(server.url) as client:
        return client.create_token(*who)


Call = Callable[..., Awaitable[Any]]


@pytest.fixture(params=["sync", "async"])
async def call(request: pytest.FixtureRequest, server: ApiThread) -> AsyncIterator[Callable[..., Call]]:
    """``call(token)("method", *args)`` runs a client method through the sync or the async client."""
    opened: list[Client | AsyncClient] = []

    def with_token(token: str | None = None) -> Call:
        if request.param == "sync":
            sync = Client(server.url, token)
            opened.append(sync)

            async def run_sync(method: str, *args: Any, **kwargs: Any) -> Any:
                return getattr(sync, method)(*args, **kwargs)

            return run_sync
        aclient = AsyncClient(server.url, token)
        opened.append(aclient)

        async def run_async(method: str, *args: Any, **kwargs: Any) -> Any:
            return await getattr(aclient, method)(*args, **kwargs)

        return run_async

    yield with_token
    for client in opened:
        if isinstance(client, AsyncClient):
            await client.aclose()
        else:
            client.close()


async def test_vm_routes(call: Callable[..., Call], server: ApiThread, store: Store) -> None:
    await fill(store, "deb", 3)
    await fill(store, "cent", 1)
    api = call(new_token(server))
    assert await api("pools") == ["deb", "cent"]

    vms: list[VM] = await api("checkout", {"debian": 2, "cent": 1})
    assert sorted(vm.pool for vm in vms) == ["cent", "debian", "debian"]
    assert all(vm.fqdn == f"{vm.hostname}.{DOMAIN}" for vm in vms)
    assert await store.members("deb", VMState.RUNNING) == {vm.hostname for vm in vms if vm.pool == "debian"}
    one = await api("checkout", "deb")
    assert [vm.pool for vm in one] == ["deb"]

    host = vms[0].fqdn
    info = await api("query", host)
    assert info["hostname"] == vms[0].hostname and info["state"] == "running" and info["template"] == "deb"
    assert info["lifetime"] == 2 and info["fqdn"] == host

    assert await api("modify", host, lifetime=4, tags={"team": "qa"}) is None
    changed = await api("query", vms[0].hostname)
    assert changed["lifetime"] == 4 and changed["tags"] == {"team": "qa"}

    snapshot = await api("snapshot", host)
    assert len(snapshot) == 32 and int(snapshot, 16) >= 0
    with pytest.raises(NotFound, match="has no snapshot '0123'"):
        await api("revert", host, "0123")  # the manager has not taken any yet
    assert await api("add_disk", host, 8) == "+8gb"

    assert await api("delete", host) is None
    with pytest.raises(NotFound, match="is not checked out"):
        await api("delete", host)

    status = await api("status")
    assert set(status["pools"]) == {"deb", "cent"} and status["status"]["ok"] is True  # size-0 pools
    assert set(await api("status", ["capacity"])) == {"capacity", "status"}
    assert "boot" in await api("summary") and "daily" in await api("summary", "2026-01-01", "2026-01-02")


async def test_errors_carry_the_servers_message(call: Callable[..., Call], server: ApiThread, store: Store) -> None:
    await fill(store, "deb", 1)
    api = call()
    with pytest.raises(NotFound, match="unknown pool or alias 'nope'") as unknown:
        await api("checkout", "nope")
    assert unknown.value.status == 404 and unknown.value.extra["pool"] == "nope"
    with pytest.raises(ServiceUnavailable, match="not enough ready VMs in 'deb'"):
        await api("checkout", {"deb": 2})
    with pytest.raises(BadRequest, match="must be at least 1"):
        await api("checkout", {"deb": 0})
    with pytest.raises(NotFound, match="no VM named 'ghost'"):
        await api("query", "ghost")
    with pytest.raises(Unauthorized, match="needs a token"):
        await api("snapshot", "deb-vm0")
    with pytest.raises(Unauthorized, match="not valid"):
        await call("not-a-real-token")("checkout", "deb")
    owned = call(new_token(server))
    (vm,) = await owned("checkout", "deb")
    with pytest.raises(BadRequest, match="exceeds the configured maximum of 48"):
        await owned("modify", vm.hostname, lifetime=49)
    with pytest.raises(Forbidden, match="checked out by another user"):
        await call(new_token(server, BOB))("delete", vm.hostname)
    with pytest.raises(BadRequest, match="Disk size"):
        await owned("add_disk", vm.hostname, 4096)


async def test_an_unreachable_server_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url) as client, pytest.raises(ServerUnreachable, match=f"cannot reach vmpooler at {url}"):
        client.pools()
    async with AsyncClient(url) as aclient:
        with pytest.raises(ServerUnreachable):
            await aclient.status()
    with pytest.raises(ServerUnreachable, match="did not answer in time"):
        Client(url, transport=_TimingOut()).pools()


class _TimingOut(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)


def test_a_reply_without_json_is_still_an_api_error() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    with Client("http://x", transport=httpx.MockTransport(broken)) as client, pytest.raises(ApiError) as caught:
        client.pools()
    assert caught.value.status == 500 and "500" in str(caught.value)


async def test_tokens(call: Callable[..., Call], server: ApiThread) -> None:
    api = call()
    token = await api("create_token", *ALICE)
    assert len(token) == 32
    listed = await api("list_tokens", *ALICE)
    assert list(listed) == [token[:6] + "…"] and listed[token[:6] + "…"]["last"] == "never"
    info = await api("token_info", token)
    assert info["user"] == "alice"
    assert (await call(token)("token_info"))["user"] == "alice"  # the client's own token
    with pytest.raises(Unauthorized, match="wrong user name or password"):
        await api("create_token", "carol", "carol")
    with pytest.raises(Forbidden, match="another user"):
        await api("delete_token", token, *BOB)
    assert await api("delete_token", token, *ALICE) is None
    with pytest.raises(NotFound, match="no such token"):
        await api("token_info", token)


async def test_ondemand_request_status_and_cancel(call: Callable[..., Call], server: ApiThread) -> None:
    api = call(new_token(server))
    rid = await api("request", {"debian": 1}, request_id="build-1")
    assert rid == "build-1"
    with pytest.raises(Conflict, match="already been created"):
        await api("request", "deb", request_id="build-1")
    waiting = await api("request_status", rid)
    assert not waiting.ready and not waiting.finished and waiting.pending == {"debian": {"ready": 0, "pending": 1}}
    assert await api("cancel_request", rid) is None
    cancelled = await api("request_status", rid)
    assert cancelled.finished and not cancelled.ready and "deleted" in (cancelled.message or "")
    with pytest.raises(NotFound, match="no request found"):
        await api("request_status", "nope")


async def test_ondemand_request_is_delivered(server: ApiThread, store: Store, inventory_file: Any) -> None:
    manager = manager_for(client_settings(), store, dummy(inventory_file))
    async with AsyncClient(server.url, new_token(server)) as client:
        rid = await client.request(["cent", "deb", "deb"])

        async def ready() -> bool:
            return (await client.request_status(rid)).ready

        await run_until(manager, ready, timeout=30)
        done = await client.request_status(rid)
    assert sorted(vm.pool for vm in done.vms) == ["cent", "deb", "deb"]
    assert all(vm.fqdn.endswith(f".{DOMAIN}") for vm in done.vms)


async def test_vm_context_manager_returns_the_vm_even_on_error(server: ApiThread, store: Store) -> None:
    await fill(store, "deb", 3)
    with Client(server.url) as client:
        with pytest.raises(RuntimeError), client.vm("debian") as vm:
            assert await store.locate(vm.hostname) == ("deb", VMState.RUNNING)
            raise RuntimeError("the test failed")
        assert await store.locate(vm.hostname) == ("deb", VMState.COMPLETED)
        with client.vm("deb") as returned_early:
            client.delete(returned_early.hostname)  # returning it inside the block is fine
    async with AsyncClient(server.url) as aclient:
        with pytest.raises(RuntimeError):
            async with aclient.vm("deb") as avm:
                raise RuntimeError("boom")
        assert await store.locate(avm.hostname) == ("deb", VMState.COMPLETED)


async def test_vm_factory_returns_every_vm(server: ApiThread, store: Store) -> None:
    await fill(store, "deb", 2)
    await fill(store, "cent", 1)
    with Client(server.url) as client:
        factory = VMFactory(client, default_pool="deb")
        vms = [factory(), factory("cent"), factory()]
        client.delete(vms[0].hostname)  # the test returned one itself
        factory.close()
        with pytest.raises(pytest.UsageError, match="needs a pool"):
            VMFactory(client)()
    for vm in vms:
        assert (await store.locate(vm.hostname))[1] == VMState.COMPLETED


async def test_pytest_fixture_lends_a_vm(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server: ApiThread, store: Store
) -> None:
    await fill(store, "deb", 2)
    monkeypatch.setenv("VMPOOLER_URL", server.url)
    monkeypatch.delenv("VMPOOLER_TOKEN", raising=False)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vmpooler("deb")
        def test_gets_a_vm(vmpooler_vm):
            vm = vmpooler_vm()
            assert vm.pool == "deb"
            print("VM=" + vm.hostname)
            assert False, "fails, yet the VM goes back"

        def test_needs_no_vm():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    (name,) = re.findall(r"VM=([\w-]+)$", result.stdout.str(), re.MULTILINE)
    assert await store.locate(name) == ("deb", VMState.COMPLETED)
