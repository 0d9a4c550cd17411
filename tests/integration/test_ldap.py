"""LdapAuth against a real slapd (tests/support/slapd.py), and build_backend's configuration errors."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.slapd import CONTRACTORS, PEOPLE, SERVICE_DN, USERS, LdapUser, Slapd, running_slapd, slapd_missing
from vmpooler.auth import DummyAuth, LdapAuth, LdapSettings, build_backend
from vmpooler.errors import AuthUnavailable, ConfigError
from vmpooler.store.embedded import free_port

INJECTIONS = [
    "*",
    "alice)(uid=*",
    "*)(|(uid=*",
    "alice,ou=people",
    "alice\x00",
    "uid=alice,ou=people,dc=example,dc=com",
]


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


def ldap(slapd: Slapd, **overrides: Any) -> LdapAuth:
    return LdapAuth(LdapSettings.model_validate(slapd.ldap_config(**overrides)))


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A port whose connections the kernel accepts but nobody ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# --- simple bind as <user_object>=<user>,<base> ---------------------------------------------------------


@pytest.mark.parametrize("user", USERS.values(), ids=USERS.keys())
async def test_right_password_passes_across_bases_and_user_objects(slapd: Slapd, user: LdapUser) -> None:
    assert await ldap(slapd).authenticate(user.name, user.password) is True


@pytest.mark.parametrize("user", USERS.values(), ids=USERS.keys())
async def test_a_single_base_and_user_object_given_as_strings(slapd: Slapd, user: LdapUser) -> None:
    assert await ldap(slapd, base=user.base, user_object=user.user_object).authenticate(user.name, user.password)
    other_base = CONTRACTORS if user.base == PEOPLE else PEOPLE
    assert not await ldap(slapd, base=other_base, user_object=user.user_object).authenticate(user.name, user.password)


async def test_the_naming_attribute_must_be_listed(slapd: Slapd) -> None:
    carol = USERS["carol"]  # named by cn, has no uid
    assert await ldap(slapd, user_object="uid").authenticate(carol.name, carol.password) is False
    assert await ldap(slapd, user_object="cn").authenticate(carol.name, carol.password) is True


async def test_wrong_password_and_unknown_user_fail(slapd: Slapd) -> None:
    auth = ldap(slapd)
    assert await auth.authenticate("alice", "not-alice-pw") is False
    assert await auth.authenticate("alice", USERS["dave"].password) is False
    assert await auth.authenticate("nobody", "alice-pw") is False


async def test_empty_password_fails_without_asking_the_server(slapd: Slapd, unresponsive_port: int) -> None:
    assert await ldap(slapd).authenticate("alice", "") is False
    # nothing answers on this port: any bind attempt would raise AuthUnavailable after the timeout
    started = time.monotonic()
    silent = ldap(slapd, port=unresponsive_port, timeout=5)
    assert await silent.authenticate("alice", "") is False
    assert await silent.authenticate("", "alice-pw") is False
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("service_account", [False, True], ids=["bind", "service-account"])
@pytest.mark.parametrize("name", INJECTIONS)
async def test_injection_attempts_fail(slapd: Slapd, name: str, service_account: bool) -> None:
    extra = {"service_account_hash": slapd.service_account()} if service_account else {}
    auth = ldap(slapd, **extra)
    for user in USERS.values():
        assert await auth.authenticate(name, user.password) is False


# --- service account: search, then bind as the entry found ----------------------------------------------


@pytest.mark.parametrize("user", USERS.values(), ids=USERS.keys())
async def test_service_account_finds_and_binds_each_user(slapd: Slapd, user: LdapUser) -> None:
    auth = ldap(slapd, service_account_hash=slapd.service_account())
    assert await auth.authenticate(user.name, user.password) is True
    assert await auth.authenticate(user.name, user.password + "x") is False


async def test_service_account_keys_may_be_ruby_symbols(slapd: Slapd) -> None:
    account = {":user_dn": SERVICE_DN, ":password": slapd.service_account()["password"]}
    auth = ldap(slapd, service_account_hash=account)
    assert await auth.authenticate("carol", "carol-pw") is True
    assert await auth.authenticate("nobody", "carol-pw") is False


async def test_a_refused_service_account_makes_auth_unavailable(slapd: Slapd) -> None:
    auth = ldap(slapd, service_account_hash={"user_dn": SERVICE_DN, "password": "wrong"})
    with pytest.raises(AuthUnavailable, match=rf"127\.0\.0\.1:{slapd.port}.*service account"):
        await auth.authenticate("alice", "alice-pw")


async def test_passwords_are_never_logged(slapd: Slapd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await ldap(slapd).authenticate("alice", "alice-pw")
    await ldap(slapd).authenticate("alice", "wrong-horse-battery")
    await ldap(slapd, service_account_hash=slapd.service_account()).authenticate("dave", "dave-pw")
    assert caplog.records  # the attempts are logged ...
    for secret in ("alice-pw", "wrong-horse-battery", "dave-pw", slapd.service_account()["password"]):
        assert secret not in caplog.text  # ... without a password


# --- TLS -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verify", ["no-verify", "ca-file", "original-mapping"])
@pytest.mark.parametrize("encryption", ["start_tls", "simple_tls"])
async def test_tls(slapd: Slapd, encryption: str, verify: str) -> None:
    port = slapd.ldaps_port if encryption == "simple_tls" else slapd.port
    options: dict[str, Any] = {
        "no-verify": {"encryption": encryption, "verify_certificates": False},
        "ca-file": {"encryption": encryption, "ca_file": str(slapd.ca_file)},
        "original-mapping": {
            "encryption": {
                ":method": f":{encryption}",
                "tls_options": {"ssl_version": "TLSv1_2", "ca_file": str(slapd.ca_file)},
            }
        },
    }[verify]
    for service_account in ({}, {"service_account_hash": slapd.service_account()}):
        auth = ldap(slapd, port=port, **options, **service_account)
        assert await auth.authenticate("alice", "alice-pw") is True
        assert await auth.authenticate("alice", "wrong") is False


@pytest.mark.parametrize("encryption", ["start_tls", "simple_tls"])
async def test_an_untrusted_certificate_makes_auth_unavailable(slapd: Slapd, encryption: str) -> None:
    port = slapd.ldaps_port if encryption == "simple_tls" else slapd.port
    auth = ldap(slapd, port=port, encryption=encryption)  # verifies against the system CAs: self-signed fails
    with pytest.raises(
        AuthUnavailable, match=rf"127\.0\.0\.1:{port}: (StartTLS|connect \(TLS\)) failed: .*certificate verify failed"
    ):
        await auth.authenticate("alice", "alice-pw")


async def test_start_tls_on_the_ldaps_port_is_unavailable_not_a_wrong_password(slapd: Slapd) -> None:
    auth = ldap(slapd, port=slapd.ldaps_port, encryption="start_tls", verify_certificates=False, timeout=0.5)
    with pytest.raises(AuthUnavailable, match=rf"127\.0\.0\.1:{slapd.ldaps_port}"):
        await auth.authenticate("alice", "alice-pw")


# --- a directory that cannot be asked -------------------------------------------------------------------


@pytest.mark.parametrize("encryption", ["none", "start_tls", "simple_tls"])
async def test_a_closed_port_is_unavailable_at_once(encryption: str) -> None:
    port = free_port()
    auth = LdapAuth(LdapSettings(host="127.0.0.1", port=port, base=PEOPLE, encryption=encryption, timeout=2))
    started = time.monotonic()
    with pytest.raises(AuthUnavailable, match=rf"127\.0\.0\.1:{port}: connect.* failed"):
        await auth.authenticate("alice", "alice-pw")
    assert time.monotonic() - started < 1  # refused at once, no waiting for the timeout


@pytest.mark.parametrize("service_account", [False, True], ids=["bind", "service-account"])
@pytest.mark.parametrize("encryption", ["none", "start_tls", "simple_tls"])
async def test_an_unresponsive_server_is_unavailable_within_the_timeout(
    unresponsive_port: int, encryption: str, service_account: bool
) -> None:
    account = {"user_dn": SERVICE_DN, "password": "x"} if service_account else None
    settings = LdapSettings(
        host="127.0.0.1",
        port=unresponsive_port,
        base=[PEOPLE, CONTRACTORS],
        user_object=["uid", "cn"],
        encryption=encryption,
        timeout=0.5,
        service_account_hash=account,
    )
    started = time.monotonic()
    with pytest.raises(AuthUnavailable, match=rf"127\.0\.0\.1:{unresponsive_port}: \S+.* failed"):
        await LdapAuth(settings).authenticate("alice", "alice-pw")
    # one step waited out its timeout (a fraction of a second, not rounded up to whole seconds), then gave up
    assert 0.4 < time.monotonic() - started < 0.5 + 0.5


# --- settings and build_backend ---------------------------------------------------------------------------


def test_settings_read_the_originals_spellings() -> None:
    settings = LdapSettings.model_validate(
        {
            "host": "ldap.example.com",
            "base": "ou=people, dc=example,dc=com ou=Build Team,dc=example,dc=com",
            "user_object": "uid cn",
            "encryption": {"method": ":simple_tls", "tls_options": {"ssl_version": "TLSv1_2", "verify_mode": 0}},
            "service_account_hash": {":user_dn": "cn=svc,dc=example,dc=com", ":password": "pw"},
        }
    )
    assert settings.base == ["ou=people,dc=example,dc=com", "ou=Build Team,dc=example,dc=com"]
    assert settings.user_object == ["uid", "cn"]
    assert settings.encryption == "simple_tls"
    assert settings.verify_certificates is False
    assert settings.port == 389
    assert settings.timeout == 5
    assert settings.service_account_hash is not None
    assert settings.service_account_hash.user_dn == "cn=svc,dc=example,dc=com"
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("encryption", "expected"),
    [
        (None, "start_tls"),
        (":start_tls", "start_tls"),
        ("simple_tls", "simple_tls"),
        ("none", "none"),
        ("START-TLS", "start_tls"),
    ],
)
def test_encryption_spellings(encryption: str | None, expected: str) -> None:
    settings = LdapSettings.model_validate({"host": "h", "base": "dc=x", "encryption": encryption})
    assert settings.encryption == expected


def test_build_backend_picks_the_provider(slapd: Slapd) -> None:
    assert build_backend(None) is None
    assert isinstance(build_backend({"provider": "dummy"}), DummyAuth)
    backend = build_backend({"provider": "ldap", "ldap": slapd.ldap_config()})
    assert isinstance(backend, LdapAuth)
    assert backend.name == "ldap"
    assert backend.settings.base == [PEOPLE, CONTRACTORS]


@pytest.mark.parametrize(
    ("auth", "problems"),
    [
        ({}, ["auth.provider: required"]),
        ({"provider": "kerberos"}, ["auth.provider: must be one of dummy, ldap, got 'kerberos'"]),
        ({"provider": "ldap"}, ["auth.ldap: required"]),
        ({"provider": "ldap", "ldap": {"base": "dc=x"}}, ["auth.ldap.host: required"]),
        ({"provider": "ldap", "ldap": {"host": "h"}}, ["auth.ldap.base: required"]),
        ({"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "port": 0}}, ["auth.ldap.port: must be ≥ 1"]),
        ({"provider": "ldap", "ldap": {"host": "h", "base": ["dc=x", "oops"]}}, ["auth.ldap.base[1]: not a valid DN"]),
        (
            {"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "user_object": "uid="}},
            ["auth.ldap.user_object[0]"],
        ),
        ({"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "encryption": "tls"}}, ["auth.ldap.encryption"]),
        ({"provider": "ldap", "ldap": {"host": "ldaps://h", "base": "dc=x"}}, ["auth.ldap.host: must be a host name"]),
        ({"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "ca_file": "/no/such.pem"}}, ["auth.ldap.ca_file"]),
        ({"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "timeout": 0}}, ["auth.ldap.timeout: must be > 0"]),
        (
            {"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "service_account_hash": {"user_dn": "cn=s"}}},
            ["auth.ldap.service_account_hash.password: required"],
        ),
        ({"provider": "ldap", "ldap": {"host": "h", "base": "dc=x", "hots": "typo"}}, ["auth.ldap.hots"]),
    ],
)
def test_build_backend_errors_name_the_key_path(auth: dict[str, Any], problems: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        build_backend(auth)
    assert len(caught.value.problems) == len(problems)
    for problem, expected in zip(caught.value.problems, problems, strict=True):
        assert problem.startswith(expected), problem


def test_ca_file_is_read_as_a_path(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("not checked until a connection is made\n")
    assert LdapSettings.model_validate({"host": "h", "base": "dc=x", "ca_file": str(pem)}).ca_file == pem
