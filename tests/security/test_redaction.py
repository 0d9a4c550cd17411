"""Issue 14, item 6: /config and /full_config serve an allow-list of harmless fields; secrets under any
name (in a URL, a DNS plugin's header, a pool's user data) are never served, nor :auth: or :redis:."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ApiThread
from vmpooler.config import parse_settings

SECRETS = ["PW-in-url", "dns-bearer", "userdata-pw", "pwd-value", "libvirt-pw", "ssh-key-body", "ldap-pw", "redis-pw"]
RAW = {
    "config": {"experimental_features": True},
    "providers": {
        "cloud": {
            "provider_class": "dummy",
            "endpoint_url": "http://admin:PW-in-url@cloud.example.com/api",
            "max_vms": 9,
        },
        "kvm": {"provider_class": "dummy", "uri": "qemu+ssh://root:libvirt-pw@kvm.example.com/system"},
    },
    "dns_configs": {
        "corp": {"dns_class": "dynamic-dns", "domain": "corp.example.com", "auth": "Bearer dns-bearer"},
    },
    "pools": [
        {
            "name": "deb",
            "template": "t/deb",
            "size": 1,
            "provider": "cloud",
            "dns_plugin": "corp",
            "clone_target": "https://svc:PW-in-url@vcenter.example.com/cluster1",
            "user_data": "#cloud-config\npassword: userdata-pw\n",
            "pwd": "pwd-value",
            "ssh_authorization": "ssh-rsa ssh-key-body",
        },
        {"name": "win", "template": "t/win", "size": 1, "provider": "kvm"},
    ],
    # the dummy backend, so the test needs no directory; the :ldap: section is there to be left unserved
    "auth": {
        "provider": "dummy",
        "ldap": {"host": "ldap.example.com", "service_account_hash": {"password": "ldap-pw"}},
    },
    "redis": {"server": "127.0.0.1", "password": "redis-pw"},
    "statsd": {"server": "statsd.example.com", "port": 8125, "token": "pwd-value"},
}
ROUTES = ["/api/v3/full_config", "/api/v3/config", "/full_config", "/config", "/api/v1/config"]


@pytest.fixture(scope="module")
def api(redis_server: object) -> Iterator[httpx.Client]:
    settings, _ = parse_settings(RAW, env={})
    port = redis_server.port  # type: ignore[attr-defined]
    with ApiThread(settings, port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", ROUTES)
def test_no_secret_is_served(api: httpx.Client, path: str) -> None:
    reply = api.get(path)
    assert reply.status_code == 200
    leaked = [secret for secret in SECRETS if secret in reply.text]
    assert not leaked, f"{path} serves {leaked}"


def test_auth_and_redis_are_not_served_at_all(api: httpx.Client) -> None:
    served = api.get("/api/v3/full_config").json()["full_config"]
    assert "auth" not in served and "redis" not in served


def test_harmless_fields_are_still_served(api: httpx.Client) -> None:
    full = api.get("/api/v3/full_config").json()["full_config"]
    assert full["providers"]["cloud"] == {"provider_class": "dummy", "max_vms": 9}
    assert full["dns_configs"]["corp"] == {"dns_class": "dynamic-dns", "domain": "corp.example.com"}
    assert full["statsd"] == {"server": "statsd.example.com", "port": 8125}
    assert full["config"]["experimental_features"] is True
    pools = {pool["name"]: pool for pool in api.get("/api/v3/config").json()["pool_configuration"]}
    assert pools["deb"]["size"] == 1 and pools["deb"]["template"] == "t/deb"
    # a URL keeps everything but its user name and password
    assert pools["deb"]["clone_target"] == "https://vcenter.example.com/cluster1"
    assert "user_data" not in pools["deb"]
