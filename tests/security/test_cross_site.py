"""Issue 14, item 11: a browser page on another site cannot change anything (a text/plain or form POST
needs no preflight), a body must be JSON, and ``allowed_hosts`` refuses other Host names (DNS
rebinding) — while the original README's ``curl -d`` examples keep working."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.security.served import fill
from tests.support.pools import settings_with
from tests.support.servers import ApiThread, RedisProcess, shared_api_client

EVIL = "http://evil.example.com"


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    settings = settings_with([{"name": "deb", "template": "t/deb", "size": 5}])
    with ApiThread(settings, redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    fill(redis_port, "deb", 5)
    with shared_api_client(server) as client:
        yield client


def ready(api: httpx.Client) -> int:
    return int(api.get("/api/v3/poolstat?pool=deb").json()["pools"]["deb"]["ready"])


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Content-Type": "text/plain"},
        {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},
        {"Origin": EVIL, "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"},
    ],
)
def test_a_cross_site_checkout_is_refused(api: httpx.Client, headers: dict[str, str]) -> None:
    for path, body in (("/api/v3/vm", b'{"deb": 1}'), ("/api/v3/vm/deb", b""), ("/vm", b'{"deb": 1}')):
        reply = api.post(path, content=body, headers=headers)
        assert reply.status_code == 403, (path, headers, reply.text)
        assert "cross-site" in reply.json()["error"]
    assert ready(api) == 5


def test_a_cross_site_return_or_change_is_refused(api: httpx.Client) -> None:
    host = api.post("/api/v3/vm", json={"deb": 1}).json()["deb"]["hostname"]
    cross = {"Origin": EVIL}
    assert api.put(f"/api/v3/vm/{host}", json={"tags": {"a": "b"}}, headers=cross).status_code == 403
    assert api.delete(f"/api/v3/vm/{host}", headers=cross).status_code == 403
    assert api.get(f"/api/v3/vm/{host}").json()[host]["state"] == "running"


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml"])
def test_a_body_that_is_not_json_is_415(api: httpx.Client, content_type: str) -> None:
    reply = api.post("/api/v3/vm", content=b'{"deb": 1}', headers={"Content-Type": content_type})
    assert reply.status_code == 415 and "application/json" in reply.json()["error"]
    assert ready(api) == 5


def test_a_form_body_from_a_browser_page_is_415_even_from_the_same_origin(api: httpx.Client) -> None:
    same = str(api.base_url).rstrip("/")
    form = {"Origin": same, "Content-Type": "application/x-www-form-urlencoded"}
    assert api.post("/api/v3/vm", content=b'{"deb": 1}', headers=form).status_code == 415
    # the same page sending JSON (Swagger UI's "try it out") is served
    assert api.post("/api/v3/vm", json={"deb": 1}, headers={"Origin": same}).status_code == 200
    assert api.post("/api/v3/vm", json={"deb": 1}, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_the_original_readme_curl_examples_still_work(api: httpx.Client) -> None:
    url = str(api.base_url).rstrip("/")

    def curl(*args: str) -> str:
        return subprocess.run(["curl", "-s", *args], capture_output=True, text=True, check=True, timeout=30).stdout

    assert '"ok": true' in curl("-d", '{"deb":"1"}', "--url", f"{url}/vm")
    assert '"ok": true' in curl("-d", "--url", f"{url}/vm/deb")
    host = httpx.post(f"{url}/api/v3/vm", json={"deb": 1}).json()["deb"]["hostname"]
    assert '"ok": true' in curl("-X", "PUT", "-d", '{"tags":{"department":"engineering"}}', "--url", f"{url}/vm/{host}")
    assert '"ok": true' in curl("-X", "DELETE", "--url", f"{url}/vm/{host}")
    # a body with no Content-Type at all (some HTTP libraries send none) is read as JSON too
    untyped = httpx.post(f"{url}/api/v3/vm", content=b'{"deb": 1}')
    assert "content-type" not in untyped.request.headers and untyped.status_code == 200


def test_allowed_hosts_refuses_other_host_names(redis_port: int) -> None:
    settings = settings_with(
        [{"name": "deb", "template": "t/deb", "size": 1}], allowed_hosts=["127.0.0.1", ".example.com"]
    )
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/api/v3/status").status_code == 200
        assert client.get("/api/v3/status", headers={"Host": "vmpooler.example.com"}).status_code == 200
        rebound = client.get("/api/v3/status", headers={"Host": "attacker.test:4567"})
        assert rebound.status_code == 400 and "Host" in rebound.json()["error"]
