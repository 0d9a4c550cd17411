"""Admins (an LDAP group in a real slapd, or `:auth: admins`) act on every VM and token; tokens expire.

Over a real socket against a real Redis; the expiry tests drive the API's injected clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from tests.support.clock import Clock
from tests.support.servers import ApiThread, make_store, wait_for_port
from tests.support.slapd import (
    ADMIN_GROUP,
    ADMIN_MEMBERS,
    UNIQUE_ADMIN_GROUP,
    UNIQUE_ADMIN_MEMBERS,
    USERS,
    Slapd,
    running_slapd,
    slapd_missing,
)
from vmpooler.api.app import create_app
from vmpooler.auth import LdapAuth, LdapSettings, build_backend
from vmpooler.auth.base import Login
from vmpooler.auth.policy import read_policy
from vmpooler.config import Settings, parse_settings
from vmpooler.errors import ConfigError
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.embedded import free_port
from vmpooler.store.records import parse_time
from vmpooler.store.redis import Store


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    with running_slapd(tmp_path_factory.mktemp("slapd-admins")) as server:
        yield server


def settings_with_auth(auth: dict[str, Any]) -> Settings:
    raw = {"pools": [{"name": "deb", "template": "t/deb", "size": 5}], "auth": auth}
    settings, _ = parse_settings(raw, env={})
    return settings


async def fill(store: Store, count: int) -> None:
    for i in range(count):
        assert await store.create_pending("deb", f"vm{i}", {})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)


def token_of(api: httpx.Client, who: tuple[str, str]) -> str:
    reply = api.post("/api/v3/token", auth=who)
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["token"]
    return token


def checkout(api: httpx.Client, token: str) -> str:
    reply = api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token})
    assert reply.status_code == 200, reply.text
    name: str = reply.json()["deb"]["hostname"]
    return name


def credentials(name: str) -> tuple[str, str]:
    return USERS[name].name, USERS[name].password


# --- the LDAP backend's answer ---------------------------------------------------------------------------


@pytest.mark.parametrize("service_account", [False, True], ids=["bind", "service-account"])
async def test_ldap_admin_group_members_and_unique_members(slapd: Slapd, service_account: bool) -> None:
    extra = {"service_account_hash": slapd.service_account()} if service_account else {}
    for group, members in ((ADMIN_GROUP, ADMIN_MEMBERS), (UNIQUE_ADMIN_GROUP, UNIQUE_ADMIN_MEMBERS)):
        auth = LdapAuth(LdapSettings.model_validate(slapd.ldap_config(admin_group=group, **extra)))
        for key, user in USERS.items():
            login = await auth.login(user.name, user.password)
            assert login is not None and login.user == user.name
            assert login.in_admin_group is (key in members), (group, key)
        assert await auth.login("alice", "wrong") is None
        assert await auth.authenticate("alice", USERS["alice"].password) is True


async def test_ldap_without_admin_group_or_with_a_missing_one(slapd: Slapd, caplog: pytest.LogCaptureFixture) -> None:
    alice = USERS["alice"]
    plain = LdapAuth(LdapSettings.model_validate(slapd.ldap_config()))
    assert await plain.login(alice.name, alice.password) == Login("alice", in_admin_group=False)
    missing = "cn=nope,ou=groups,dc=example,dc=com"
    wrong = LdapAuth(LdapSettings.model_validate(slapd.ldap_config(admin_group=missing)))
    with caplog.at_level(logging.WARNING, logger="vmpooler.auth.ldap"):
        login = await wrong.login(alice.name, alice.password)
    assert login is not None and login.in_admin_group is False
    assert missing in caplog.text and alice.password not in caplog.text


def test_admin_group_must_be_a_dn() -> None:
    with pytest.raises(ConfigError, match=r"auth\.ldap\.admin_group: not a valid DN"):
        build_backend({"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "admin_group": "not a dn"}})


# --- admins over the API ---------------------------------------------------------------------------------


@pytest.fixture
def ldap_api(slapd: Slapd, redis_port: int) -> Iterator[httpx.Client]:
    settings = settings_with_auth({"provider": "ldap", "ldap": slapd.ldap_config(admin_group=ADMIN_GROUP)})
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


async def test_an_ldap_admin_acts_on_others_vms_and_tokens(ldap_api: httpx.Client, store: Store) -> None:
    await fill(store, 3)
    admin, dave = token_of(ldap_api, credentials("alice")), token_of(ldap_api, credentials("dave"))
    daves_vm, alices_vm = checkout(ldap_api, dave), checkout(ldap_api, admin)
    # dave is no admin: the forbidden messages are as they were
    reply = ldap_api.delete(f"/api/v3/vm/{alices_vm}", headers={"X-AUTH-TOKEN": dave})
    assert reply.status_code == 403 and reply.json()["error"] == f"VM {alices_vm!r} was checked out by another user"
    assert ldap_api.delete(f"/api/v3/token/{admin}", auth=credentials("dave")).status_code == 403
    assert ldap_api.get("/api/v3/token", params={"user": "alice"}, auth=credentials("dave")).status_code == 403
    # alice is in the admin group: dave's VM and dave's token are hers to manage
    assert ldap_api.put(f"/api/v3/vm/{daves_vm}", json={"lifetime": 5}, headers={"X-AUTH-TOKEN": admin}).is_success
    assert (await store.vm(daves_vm))["lifetime"] == "5"
    listed = ldap_api.get("/api/v3/token", params={"user": "dave"}, auth=credentials("alice")).json()
    assert listed["ok"] is True and len(listed) == 2
    assert ldap_api.delete(f"/api/v3/token/{dave}", auth=credentials("alice")).json() == {"ok": True}
    assert ldap_api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": dave}).status_code == 401
    assert ldap_api.delete(f"/api/v3/vm/{daves_vm}", headers={"X-AUTH-TOKEN": admin}).json() == {"ok": True}
    assert daves_vm in await store.members("deb", VMState.COMPLETED)


@pytest.fixture
def dummy_api(redis_port: int) -> Iterator[httpx.Client]:
    settings = settings_with_auth({"provider": "dummy", "admins": ["root"]})
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


async def test_a_new_lifetime_moves_the_managers_deadline(dummy_api: httpx.Client, store: Store) -> None:
    await fill(store, 1)
    token = token_of(dummy_api, ("bob", "pw"))
    vm = checkout(dummy_api, token)
    checked_out = parse_time((await store.vm(vm))["checkout"])
    assert checked_out is not None
    # vm_lifetime's default (24 h) from the checkout, then the 3 h asked for, in the same write
    ends = await store.client.zscore(keys.lifetime_ends("deb"), vm)
    assert 0 <= ends - (checked_out + 24 * 3600) < 1  # the record keeps whole seconds
    assert dummy_api.put(f"/api/v3/vm/{vm}", json={"lifetime": 3}, headers={"X-AUTH-TOKEN": token}).is_success
    assert await store.client.zscore(keys.lifetime_ends("deb"), vm) == checked_out + 3 * 3600


async def test_a_configured_admin_may_do_everything_an_owner_may(dummy_api: httpx.Client, store: Store) -> None:
    await fill(store, 2)
    root, bob = token_of(dummy_api, ("root", "pw")), token_of(dummy_api, ("bob", "pw"))
    vm = checkout(dummy_api, bob)
    await store.update_vm(vm, {"snapshot:s1": "2024-01-01 00:00:00 +0000"})
    as_root = {"X-AUTH-TOKEN": root}
    assert dummy_api.put(f"/api/v3/vm/{vm}", json={"lifetime": 7}, headers=as_root).status_code == 200
    assert dummy_api.post(f"/api/v3/vm/{vm}/snapshot", headers=as_root).status_code == 202
    assert dummy_api.post(f"/api/v3/vm/{vm}/snapshot/s1", headers=as_root).status_code == 202
    assert dummy_api.post(f"/api/v3/vm/{vm}/disk/8", headers=as_root).status_code == 202
    # a user not in the list is refused each of them
    carl = {"X-AUTH-TOKEN": token_of(dummy_api, ("carl", "pw"))}
    assert dummy_api.post(f"/api/v3/vm/{vm}/disk/8", headers=carl).status_code == 403
    assert dummy_api.delete(f"/api/v3/vm/{vm}", headers=carl).status_code == 403
    assert dummy_api.delete(f"/api/v3/vm/{vm}", headers=as_root).status_code == 200
    assert dummy_api.delete(f"/api/v3/token/{bob}", auth=("root", "pw")).json() == {"ok": True}


def test_the_policy_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"auth\.token_lifetime: must be > 0"):
        read_policy({"provider": "dummy", "token_lifetime": 0})
    assert read_policy({"admins": "alice bob", "token_lifetime": "1.5"}).admins == ["alice", "bob"]
    assert read_policy(None).token_lifetime is None


# --- token expiry ---------------------------------------------------------------------------------------


class ClockedApi:
    """The API app with an injected clock, served by uvicorn on a free port in a thread of its own."""

    def __init__(self, settings: Settings, redis_port: int, clock: Clock) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(settings, redis_port, clock),))

    async def _serve(self, settings: Settings, redis_port: int, clock: Clock) -> None:
        store = make_store(redis_port)
        app = create_app(settings, store, clock=clock)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        try:
            await self._server.serve()
        finally:
            await store.close()

    def __enter__(self) -> ClockedApi:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def expiring_api(redis_port: int, clock: Clock) -> Iterator[httpx.Client]:
    settings = settings_with_auth({"provider": "dummy", "token_lifetime": 2})
    with ClockedApi(settings, redis_port, clock) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


async def test_a_token_expires_after_its_lifetime(expiring_api: httpx.Client, clock: Clock, store: Store) -> None:
    await fill(store, 2)
    token = token_of(expiring_api, ("alice", "pw"))
    info = expiring_api.get(f"/api/v3/token/{token}").json()[token]
    expected = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(time.time() + 2 * 3600))
    assert info["expires"][:15] == expected[:15]  # to the ten minutes: the test may straddle a second
    assert expiring_api.get("/api/v3/token", auth=("alice", "pw")).json()[token[:6] + "…"]["expires"] == info["expires"]
    clock.offset = 2 * 3600 - 60  # a minute left: still good
    assert expiring_api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token}).status_code == 200
    clock.offset = 2 * 3600 + 1
    reply = expiring_api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token})
    assert reply.status_code == 401
    assert reply.json() == {
        "ok": False,
        "error": f"token expired on {info['expires']}; create a new one with POST /api/v3/token",
    }
    # deleted on that use: now it is simply unknown, and gone from its owner's list
    again = expiring_api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token})
    assert again.status_code == 401 and "not valid" in again.json()["error"]
    assert expiring_api.get(f"/api/v3/token/{token}").status_code == 404
    assert expiring_api.get("/api/v3/token", auth=("alice", "pw")).status_code == 404
    fresh = token_of(expiring_api, ("alice", "pw"))
    assert expiring_api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": fresh}).status_code == 200


async def test_expired_tokens_leave_the_owners_list(expiring_api: httpx.Client, clock: Clock) -> None:
    old, expired = token_of(expiring_api, ("alice", "pw")), token_of(expiring_api, ("alice", "pw"))
    clock.offset = 2 * 3600
    new = token_of(expiring_api, ("alice", "pw"))
    clock.offset = 3 * 3600 + 1  # the first two are past their lifetime, the last is not
    reply = expiring_api.get(f"/api/v3/token/{expired}")
    assert reply.status_code == 401 and reply.json()["error"].startswith("token expired on ")
    listed = expiring_api.get("/api/v3/token", auth=("alice", "pw")).json()
    assert set(listed) == {"ok", new[:6] + "…"}
    assert expiring_api.get(f"/api/v3/token/{old}").status_code == 404  # the listing deleted it


def test_without_a_lifetime_tokens_never_expire(dummy_api: httpx.Client) -> None:
    token = token_of(dummy_api, ("alice", "pw"))
    assert dummy_api.get(f"/api/v3/token/{token}").json()[token]["expires"] == "never"
