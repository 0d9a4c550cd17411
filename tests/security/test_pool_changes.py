"""Issue 14, item 8: with admins configured, only an admin changes pools at run time; and a template set
at run time must be one the pool's provider accepts (never an arbitrary file for qemu or libvirt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.pools import settle
from tests.support.servers import ApiThread
from vmpooler.config import parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.providers import registry
from vmpooler.states import VMState
from vmpooler.store.redis import Store

CHANGES = [
    ("POST", "/api/v3/config/poolsize", {"deb": "3"}),
    ("POST", "/api/v3/config/pooltemplate", {"deb": "t/deb-2"}),
    ("POST", "/api/v3/config/clonetarget", {"deb": "cluster2"}),
    ("POST", "/api/v3/poolreset", {"deb": "1"}),
    ("DELETE", "/api/v3/config/poolsize/deb", None),
    ("DELETE", "/api/v3/config/pooltemplate/deb", None),
]


@pytest.fixture
def admins_api(redis_port: int) -> Iterator[httpx.Client]:
    raw = {
        "config": {"experimental_features": True},
        "pools": [{"name": "deb", "template": "t/deb", "size": 1}],
        "auth": {"provider": "dummy", "admins": ["ops"]},
    }
    settings, _ = parse_settings(raw, env={})
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def token(api: httpx.Client, user: str) -> dict[str, str]:
    return {"X-AUTH-TOKEN": api.post("/api/v3/token", auth=(user, "pw")).json()["token"]}


def test_a_user_who_is_not_an_admin_cannot_change_pools(admins_api: httpx.Client) -> None:
    dev = token(admins_api, "dev")
    for method, path, body in CHANGES:
        reply = admins_api.request(method, path, json=body, headers=dev)
        assert reply.status_code == 403, (path, reply.text)
        assert "admin" in reply.json()["error"]
    assert admins_api.get("/api/v3/poolstat?pool=deb").json()["pools"]["deb"]["max"] == 1


def test_an_admin_can(admins_api: httpx.Client) -> None:
    ops = token(admins_api, "ops")
    for method, path, body in CHANGES:
        reply = admins_api.request(method, path, json=body, headers=ops)
        assert reply.status_code in (200, 201), (path, reply.text)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    directory = tmp_path / "images"
    directory.mkdir()
    for name in ("deb.qcow2", "deb-2.qcow2"):
        (directory / name).write_bytes(b"")
    (directory / "shadow.qcow2").symlink_to("/etc/shadow")
    return directory


@pytest.fixture
def local_api(redis_port: int, images: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    raw = {
        "config": {"experimental_features": True},
        "providers": {
            "qemu": {"provider_class": "qemu", "image_dir": str(images), "state_dir": str(tmp_path / "q")},
            # no image_dir: templates must sit beside the configured one
            "libvirt": {"provider_class": "libvirt", "state_dir": str(tmp_path / "l")},
            "vsphere": {"provider_class": "vsphere", "server": "vc.example.com", "username": "u", "password": "p"},
        },
        "pools": [
            {"name": "q", "template": str(images / "deb.qcow2"), "size": 1, "provider": "qemu"},
            {"name": "l", "template": str(images / "deb.qcow2"), "size": 1, "provider": "libvirt"},
            {"name": "v", "template": "templates/deb", "size": 1, "provider": "vsphere"},
        ],
    }
    settings, _ = parse_settings(raw, env={})
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


OUTSIDE = [
    "/etc/shadow",
    "{images}/../../etc/shadow",
    "{images}/shadow.qcow2",
    "{images}",
    "relative.qcow2",
    "/dev/zero",
]


def test_a_local_provider_refuses_a_file_outside_its_images(local_api: httpx.Client, images: Path) -> None:
    for pool in ("q", "l"):
        for template in OUTSIDE:
            reply = local_api.post("/api/v3/config/pooltemplate", json={pool: template.format(images=images)})
            assert reply.status_code == 400, (pool, template, reply.text)
            assert reply.json()["bad_templates"] == [pool]


def test_a_local_provider_takes_an_image_of_its_own(local_api: httpx.Client, images: Path) -> None:
    for pool in ("q", "l"):
        assert (
            local_api.post("/api/v3/config/pooltemplate", json={pool: str(images / "deb-2.qcow2")}).status_code == 201
        )


def test_vsphere_templates_are_folder_and_name(local_api: httpx.Client) -> None:
    for bad in ("/etc/shadow", "deb", "templates/", "/templates/deb"):
        assert local_api.post("/api/v3/config/pooltemplate", json={"v": bad}).status_code == 400, bad
    assert local_api.post("/api/v3/config/pooltemplate", json={"v": "templates/deb-2"}).status_code == 201


def test_without_admins_any_token_may_as_the_original(redis_port: int) -> None:
    raw = {
        "config": {"experimental_features": True},
        "pools": [{"name": "deb", "template": "t/deb", "size": 1}],
        "auth": {"provider": "dummy"},
    }
    settings, _ = parse_settings(raw, env={})
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert (
            client.post("/api/v3/config/poolsize", json={"deb": "2"}, headers=token(client, "dev")).status_code == 201
        )


async def test_the_manager_ignores_a_stored_template_its_provider_refuses(store: Store, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    raw = {
        "providers": {"qemu": {"provider_class": "qemu", "image_dir": str(images), "state_dir": str(tmp_path / "q")}},
        # no image exists: each clone fails at once, and its error names the template it was cloned from
        "pools": [{"name": "q", "template": str(images / "deb.qcow2"), "size": 1, "provider": "qemu"}],
    }
    settings, _ = parse_settings(raw, env={})

    seen: set[str] = set()

    async def cloned_from() -> list[str]:
        """The clone errors of one pass of a fresh manager (so a fresh circuit breaker)."""
        manager = Manager(settings, store, registry.build_all(settings.pools, settings.providers, settings.config))
        await manager.run_once()
        await settle(manager)
        failed = await store.members("q", VMState.FAILED) - seen
        seen.update(failed)
        return [(await store.vm(name)).get("clone_error", "") for name in failed]

    # written behind the API's back (by hand, or before templates were checked)
    await store.overrides.set("template", {"q": "/etc/shadow"})
    errors = await cloned_from()
    assert errors and all(str(images / "deb.qcow2") in e and "/etc/shadow" not in e for e in errors), errors
    await store.overrides.set("template", {"q": str(images / "deb-2.qcow2")})
    errors = await cloned_from()
    assert errors and all(str(images / "deb-2.qcow2") in e for e in errors), errors
