"""Issue 14, item 5: clients that send their headers a byte at a time, or nothing, or sit idle after a
reply, are closed within the configured timeouts, and a normal request is answered meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from tests.security.served import api_process

SLOW_CLIENTS = 300
HEAD = b"GET /api/v3/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"p" * 4000 + b"\r\n\r\n"


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset), after reading what it sent."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_headers_are_cut_off_while_normal_requests_are_answered(tmp_path: Path, redis_port: int) -> None:
    with api_process(tmp_path, redis_port, config={"api_header_timeout": 3}) as api:
        socks = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(SLOW_CLIENTS)]
        opened = time.monotonic()
        dripping = True

        def drip() -> None:
            """A byte of the head to every connection still open, every 0.2 s: never the whole head."""
            sent = 0
            while dripping and sent < len(HEAD):
                for sock in socks:
                    try:
                        sock.send(HEAD[sent : sent + 1])
                    except OSError:
                        pass
                sent += 1
                time.sleep(0.2)

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            time.sleep(1)
            started = time.monotonic()
            reply = httpx.get(f"{api.url}/api/v3/status", timeout=5)
            assert reply.status_code == 200 and time.monotonic() - started < 1.0
            open_before_timeout = [s for s in socks if not closed_by_server(s)]
            assert len(open_before_timeout) == SLOW_CLIENTS
            # the timeout is 3 s; allow as much again for a loaded machine
            while time.monotonic() - opened < 8 and any(not closed_by_server(s) for s in socks):
                time.sleep(0.2)
            still_open = sum(not closed_by_server(s) for s in socks)
            assert still_open == 0, f"{still_open} slow connections still open after {time.monotonic() - opened:.1f}s"
        finally:
            dripping = False
            dripper.join()
            for sock in socks:
                sock.close()


def test_silent_and_idle_connections_are_closed(tmp_path: Path, redis_port: int) -> None:
    config = {"api_header_timeout": 2, "api_keepalive_timeout": 1}
    with api_process(tmp_path, redis_port, config=config) as api:
        silent = socket.create_connection(("127.0.0.1", api.port))
        idle = socket.create_connection(("127.0.0.1", api.port))
        idle.sendall(b"GET /api/v3/vm HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not (closed_by_server(silent) and closed_by_server(idle)):
            time.sleep(0.1)
        assert closed_by_server(silent), "a connection that never sent a byte is still open"
        assert closed_by_server(idle), "a kept-alive connection left idle is still open"
        silent.close()
        idle.close()


def test_the_concurrency_limit_answers_503_beyond_it(tmp_path: Path, redis_port: int) -> None:
    with api_process(tmp_path, redis_port, config={"api_max_concurrency": 5, "api_header_timeout": 30}) as api:
        held = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(5)]
        try:
            time.sleep(0.3)
            reply = httpx.get(f"{api.url}/api/v3/status", timeout=5)
            assert reply.status_code == 503 and reply.json()["ok"] is False
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        assert httpx.get(f"{api.url}/api/v3/status", timeout=5).status_code == 200
