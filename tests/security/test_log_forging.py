"""Issue 14, item 12: nothing a client sends can start a log line of its own: control characters in
anything logged from a request (its path, a pool name, a user name) are written as escapes."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import httpx

from tests.security.served import api_process

FORGED = "FORGED vmpooler.api: admin alice logged in"


def raw_get(port: int, target: bytes, headers: bytes = b"") -> None:
    """A request line sent as given (httpx would quote what we mean to send raw)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + b"\r\n")
        while sock.recv(65536):
            pass


def test_control_characters_from_a_request_are_escaped_in_the_log(tmp_path: Path, redis_port: int) -> None:
    config = {"request_logger": True, "log_format": "plain"}
    with api_process(tmp_path, redis_port, config=config, auth={"provider": "dummy"}) as api:
        forged = FORGED.replace(" ", "%20").encode()
        raw_get(api.port, b"/api/v3/vm/x%0a" + forged)
        raw_get(api.port, b"/api/v3/vm/x%0d%0a" + forged + b"%1b[31m")
        # a user name with a newline, in basic auth: the token route logs who asked
        credentials = base64.b64encode(f"bob\n{FORGED}:pw".encode())
        httpx.post(f"{api.url}/api/v3/token", headers={"Authorization": b"Basic " + credentials})
        httpx.get(f"{api.url}/api/v3/vm/x%E2%80%A8" + FORGED.replace(" ", "%20"))
        httpx.get(f"{api.url}/api/v3/status")  # a last line, so the ones before are surely written
    lines = api.log_text().splitlines()
    assert any("/api/v3/status" in line for line in lines), lines
    assert not [line for line in lines if line.startswith("FORGED")], lines
    assert not [line for line in lines if "\x1b" in line or "\r" in line or "\u2028" in line], lines
    assert any("\\n" + FORGED in line for line in lines), lines
