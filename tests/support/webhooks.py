"""Webhooks for tests and benchmarks: a real HTTP receiver (answers 200, 500 or hangs), delivery workers on a
thread, and events written to the stream in the shared format."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import redis

from tests.support.servers import make_store
from vmpooler.config.webhooks import WebhookSettings
from vmpooler.store import keys
from vmpooler.webhooks import WebhookDispatcher


def emit(client: redis.Redis, kind: str, pool: str = "deb", vm: str = "vm1", owner: str = "", **data: Any) -> str:
    """XADD one event as the event stream's writers do; returns its id."""
    fields = {"type": kind, "pool": pool, "vm": vm, "owner": owner, "at": f"{time.time():.6f}"}
    entry_id = client.xadd(keys.EVENT_STREAM, {**fields, "data": orjson.dumps(data).decode()}, maxlen=100_000)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class DispatcherThread:
    """``WebhookDispatcher`` for ``hooks`` on a thread with its own event loop and Redis client."""

    def __init__(self, hooks: Sequence[WebhookSettings], redis_port: int, **options: Any) -> None:
        self.hooks, self.redis_port, self.options = list(hooks), redis_port, options
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None

    async def _main(self) -> None:
        store = make_store(self.redis_port)
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            dispatcher = WebhookDispatcher(self.hooks, store.client, **self.options)
            await dispatcher.prepare()
            self.ready.set()
            await dispatcher.run(self.stop)
        finally:
            self.ready.set()
            await store.close()

    def __enter__(self) -> DispatcherThread:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it hung and never answered)
    at: float  # time.time() when the request arrived

    @property
    def event(self) -> dict[str, object]:
        parsed: dict[str, object] = orjson.loads(self.body)
        return parsed


class Receiver:
    """``mode`` is "ok", "fail" (500) or "hang" (no answer until ``release``); ``fail_first`` answers 500 to
    that many requests first."""

    def __init__(self, mode: str = "ok", fail_first: int = 0) -> None:
        self.mode = mode
        self.fail_first = fail_first
        self.received: list[Received] = []
        self.released = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver.lock:
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 500
                    else:
                        status = {"ok": 200, "fail": 500, "hang": 0}[receiver.mode]
                    receiver.received.append(Received(headers, body, status, arrived))
                if status == 0:
                    receiver.released.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answered(self, status: int = 200) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.status == status]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
