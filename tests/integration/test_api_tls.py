"""`vmpooler api` serving HTTPS with a certificate from the configuration or the command line."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.certs import TlsFiles, make_tls_files
from tests.support.servers import wait_for_port
from vmpooler.store.embedded import free_port

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")


def write_config(tmp_path: Path, redis_port: int, **config: str) -> Path:
    path = tmp_path / "vmpooler.yaml"
    raw = {
        ":redis:": {"server": "127.0.0.1", "port": redis_port},
        ":config:": config,
        ":pools:": [{"name": "alpha", "template": "templates/alpha", "size": 1}],
    }
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize("source", ["config", "flags"])
def test_the_api_answers_over_https_to_a_client_trusting_the_ca(
    tmp_path: Path, redis_port: int, tls_files: TlsFiles, source: str
) -> None:
    keys = {"api_tls_cert_file": str(tls_files.cert), "api_tls_key_file": str(tls_files.key)}
    config = write_config(tmp_path, redis_port, **(keys if source == "config" else {}))
    flags = ["--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key)] if source == "flags" else []
    port = free_port()
    with (tmp_path / "api.log").open("wb") as log:
        api = subprocess.Popen(
            [VMPOOLER, "api", "-c", str(config), "--host", "127.0.0.1", "--port", str(port), *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, api, timeout=30)
        trusting = ssl.create_default_context(cafile=str(tls_files.ca))

        reply = httpx.get(f"https://127.0.0.1:{port}/api/v3/status", verify=trusting, timeout=10)

        assert reply.status_code == 200 and "alpha" in reply.json()["pools"]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/api/v3/status", verify=ssl.create_default_context(), timeout=10)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/api/v3/status", timeout=10)  # no plain HTTP on a TLS port
    finally:
        api.terminate()
        code = api.wait(30)
    assert code == 0, (tmp_path / "api.log").read_text()[-2000:]


@pytest.mark.parametrize(
    ("config_keys", "flags", "expected"),
    [
        (
            {"api_tls_cert_file": "/nonexistent/api.pem"},
            [],
            "config.api_tls_cert_file: cannot read '/nonexistent/api.pem'",
        ),
        ({}, ["--tls-cert", "/nonexistent/api.pem"], "--tls-cert: cannot read '/nonexistent/api.pem'"),
        ({}, ["--tls-key", "/nonexistent/api.key"], "--tls-cert: required when --tls-key is set"),
    ],
)
def test_a_missing_certificate_stops_start_up_naming_the_key_and_path(
    tmp_path: Path, config_keys: dict[str, str], flags: list[str], expected: str
) -> None:
    config = write_config(tmp_path, free_port(), **config_keys)

    done = subprocess.run(
        [VMPOOLER, "api", "-c", str(config), "--port", str(free_port()), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert "configuration error" in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
