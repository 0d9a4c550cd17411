"""Starts real servers for tests: redis-server processes and the API on a uvicorn thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.waiting import until_sync
from vmpooler.api.app import create_app
from vmpooler.config import Settings
from vmpooler.store.connection import connect
from vmpooler.store.embedded import free_port, redis_server_binary
from vmpooler.store.redis import Store


@dataclass
class RedisProcess:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_redis(workdir: Path, port: int | None = None, appendonly: bool = False) -> RedisProcess:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--daemonize",
        "no",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return RedisProcess(port, process, workdir)


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> None:
    def listening() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True

    until_sync(listening, f"a listener on port {port}", timeout=timeout, retry_on=(OSError,))


def make_store(port: int) -> Store:
    return Store(connect("127.0.0.1", port, socket_timeout=2.0))


class ApiThread:
    """The real API app served by uvicorn on a free port, in a thread with its own event loop."""

    def __init__(self, settings: Settings, redis_port: int) -> None:
        self.settings = settings
        self.redis_port = redis_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._app: FastAPI | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        async def main() -> None:
            store = make_store(self.redis_port)
            app = self._app = create_app(self.settings, store)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", proxy_headers=False
            )
            self._server = uvicorn.Server(config)
            self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            try:
                await self._server.serve()
            finally:
                await store.close()

        asyncio.run(main())

    def __enter__(self) -> ApiThread:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def forget_caches(self) -> None:
        """For the next test on a server its module shares (one app per module: building it is most of a
        short test's time): drop the status report cached from the last test's Redis, which was flushed."""
        if self._app is not None:
            self._app.state.status.invalidate()

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(10)


@contextlib.contextmanager
def api_thread(settings: Settings, redis_port: int) -> Iterator[ApiThread]:
    with ApiThread(settings, redis_port) as server:
        yield server


@contextlib.contextmanager
def shared_api_client(server: ApiThread, timeout: float = 10) -> Iterator[httpx.Client]:
    """A client of a module-scoped ``server`` for one test (which asks for ``redis_port``, so Redis is
    flushed): what the app cached of the test before is dropped first."""
    server.forget_caches()
    with httpx.Client(base_url=server.url, timeout=timeout) as client:
        yield client
