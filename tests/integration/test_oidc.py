"""OIDC ID tokens in place of vmpooler tokens: a local issuer (keys made here), the real API over a socket."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.oidc_issuer import LocalIssuer
from tests.support.servers import ApiThread, make_store
from vmpooler.api.app import create_app
from vmpooler.auth.oidc import OidcRejected, OidcVerifier
from vmpooler.auth.oidc_config import read_oidc
from vmpooler.config import parse_settings
from vmpooler.errors import ConfigError, ServiceUnavailable
from vmpooler.store.redis import Store
from vmpooler.validate import problems

AUDIENCE = "https://vmpooler.test"
GOOD = {"aud": AUDIENCE, "sub": "repo:acme/widgets:ref:refs/heads/main", "repository": "acme/widgets"}


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        running.add_key("rsa-1", "RS256")
        running.add_key("ec-1", "ES256")
        running.add_key("unpublished", "RS256", publish=False)
        yield running


def oidc_section(issuer: LocalIssuer) -> dict[str, object]:
    return {
        "issuer": issuer.url,
        "audience": AUDIENCE,
        "owner_claim": "repository",
        "allowed": {"repository": ["acme/*"]},
    }


@pytest.fixture
def api(issuer: LocalIssuer, redis_port: int) -> Iterator[httpx.Client]:
    raw = {
        "pools": [{"name": "deb", "template": "t/deb", "size": 3}],
        "auth": {"provider": "dummy", "oidc": [oidc_section(issuer)]},
    }
    settings, _ = parse_settings(raw, env={})
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


async def fill(store: Store, count: int) -> None:
    for i in range(count):
        assert await store.create_pending("deb", f"vm{i}", {})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)


def unsigned(issuer: LocalIssuer, kid: str) -> str:
    """An ``alg: none`` token: claims anyone could write, with no signature."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none', 'kid': kid})}.{part({**GOOD, 'iss': issuer.url, 'iat': now, 'exp': now + 60})}."


async def test_a_valid_id_token_checks_out_a_vm_owned_by_the_mapped_claim(
    api: httpx.Client, issuer: LocalIssuer, redis_port: int
) -> None:
    store = make_store(redis_port)
    try:
        await fill(store, 2)
        rsa_token = issuer.token("rsa-1", **GOOD)
        reply = api.post("/api/v3/vm/deb", headers={"Authorization": f"Bearer {rsa_token}"})
        assert reply.status_code == 200, reply.text
        name = reply.json()["deb"]["hostname"]
        assert (await store.vm(name))["token:user"] == "acme/widgets"
        # an ES256 token in the X-AUTH-TOKEN header works the same; its owner may return its VM
        ec_token = issuer.token("ec-1", **GOOD)
        assert api.get(f"/api/v3/vm/{name}").json()[name]["user"] == "acme/widgets"
        assert api.delete(f"/api/v3/vm/{name}", headers={"X-AUTH-TOKEN": ec_token}).status_code == 200
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "expired"),
        ("wrong_aud", "audience"),
        ("wrong_iss", "not accepted here"),
        ("bad_signature", "signature does not verify"),
        ("unknown_kid", "kid 'unpublished'"),
        ("alg_none", "'none' are refused"),
    ],
)
def test_a_bad_id_token_is_a_json_401_saying_what_to_do(
    api: httpx.Client, issuer: LocalIssuer, case: str, expected: str
) -> None:
    now = int(time.time())
    token = {
        "expired": lambda: issuer.token("rsa-1", **{**GOOD, "iat": now - 900, "exp": now - 600}),
        "wrong_aud": lambda: issuer.token("rsa-1", **{**GOOD, "aud": "https://elsewhere"}),
        "wrong_iss": lambda: issuer.token("rsa-1", **{**GOOD, "iss": "https://token.example"}),
        "bad_signature": lambda: issuer.token("rsa-1", sign_with="unpublished", **GOOD),
        "unknown_kid": lambda: issuer.token("unpublished", **GOOD),
        "alg_none": lambda: unsigned(issuer, "rsa-1"),
    }[case]()
    reply = api.post("/api/v3/vm/deb", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 401, reply.text
    body = reply.json()
    assert body["ok"] is False and expected in body["error"], body
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_a_claim_outside_allowed_is_refused_with_403(api: httpx.Client, issuer: LocalIssuer) -> None:
    token = issuer.token("rsa-1", **{**GOOD, "repository": "evil/fork"})
    reply = api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token})
    assert reply.status_code == 403
    assert "evil/fork" in reply.json()["error"] and "acme/*" in reply.json()["error"]


async def test_keys_are_cached_and_fetched_again_for_an_unknown_kid(issuer: LocalIssuer) -> None:
    now = [1000.0]
    (config,) = read_oidc({"oidc": [{**oidc_section(issuer), "group_claim": "repository_owner"}]})
    verifier = OidcVerifier([config], is_admin=lambda name: name == "acme", clock=lambda: now[0])
    try:
        identity = await verifier.verify(issuer.token("rsa-1", repository_owner="acme", **GOOD))
        assert identity.user == "acme/widgets" and identity.admin
        await verifier.verify(issuer.token("ec-1", **GOOD))
        assert issuer.requests.count("/jwks") == 1  # the second token's key came from the cache
        issuer.published.add("unpublished")  # the issuer rotates a new key in
        with pytest.raises(OidcRejected):  # within the refetch interval: no second fetch
            await verifier.verify(issuer.token("unpublished", **GOOD))
        now[0] += 11
        assert (await verifier.verify(issuer.token("unpublished", **GOOD))).user == "acme/widgets"
        assert issuer.requests.count("/jwks") == 2
    finally:
        await verifier.close()


async def test_an_issuer_that_is_down_is_a_503_and_asked_again_only_after_a_pause(issuer: LocalIssuer) -> None:
    now = [1000.0]
    (config,) = read_oidc({"oidc": [{**oidc_section(issuer), "jwks_url": f"{issuer.url}/missing"}]})
    verifier = OidcVerifier([config], is_admin=lambda _: False, clock=lambda: now[0])
    try:
        for _ in range(3):
            with pytest.raises(ServiceUnavailable, match="cannot fetch its JWKS"):
                await verifier.verify(issuer.token("rsa-1", **GOOD))
        assert issuer.requests.count("/missing") == 1
        now[0] += 11
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(issuer.token("rsa-1", **GOOD))
        assert issuer.requests.count("/missing") == 2
    finally:
        await verifier.close()


def test_a_wrong_oidc_entry_names_its_key_path() -> None:
    with pytest.raises(ConfigError) as raised:
        read_oidc({"oidc": [{"issuer": "https://a.example", "audience": "x"}, {"issuer": "ftp://b", "audience": "y"}]})
    assert any(line.startswith("auth.oidc[1].issuer:") for line in raised.value.problems), raised.value.problems


async def test_an_auth_section_with_only_oidc_takes_id_tokens_and_no_passwords(
    issuer: LocalIssuer, redis_port: int
) -> None:
    raw = {"pools": [{"name": "deb", "template": "t/deb", "size": 3}], "auth": {"oidc": [oidc_section(issuer)]}}
    settings, _ = parse_settings(raw, env={})
    assert problems(settings) == []
    store = make_store(redis_port)
    try:
        await fill(store, 1)
        with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as api:
            refused = api.post("/api/v3/token", auth=("alice", "secret"))
            assert refused.status_code == 404, refused.text
            assert refused.json()["ok"] is False and "only oidc" in refused.json()["error"]
            token = issuer.token("rsa-1", **GOOD)
            taken = api.post("/api/v3/vm/deb", headers={"Authorization": f"Bearer {token}"})
            assert taken.status_code == 200, taken.text
            name = taken.json()["deb"]["hostname"]
            assert (await store.vm(name))["token:user"] == "acme/widgets"
            assert api.delete(f"/api/v3/vm/{name}").status_code == 401  # auth is on: its owner's VM needs a token
    finally:
        await store.close()


async def test_the_apps_shutdown_closes_the_oidc_client(issuer: LocalIssuer, redis_port: int) -> None:
    raw = {
        "pools": [{"name": "deb", "template": "t/deb", "size": 1}],
        "auth": {"provider": "dummy", "oidc": [oidc_section(issuer)]},
    }
    settings, _ = parse_settings(raw, env={})
    store = make_store(redis_port)
    try:
        app = create_app(settings, store)
        verifier = app.state.auth.oidc
        async with app.router.lifespan_context(app):
            assert not verifier.http.is_closed
        assert verifier.http.is_closed
    finally:
        await store.close()
