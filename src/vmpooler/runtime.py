"""Wires one process together: Redis (embedded or configured), store, providers, manager and API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from vmpooler.api.app import create_app
from vmpooler.api.middleware.http_protocol import server_options
from vmpooler.config import RedisSettings, Settings, with_stored_pools
from vmpooler.demo import demo_traffic
from vmpooler.errors import StoreError
from vmpooler.manager.loop import Manager
from vmpooler.metrics import build_metrics
from vmpooler.providers import registry
from vmpooler.store.connection import client_for
from vmpooler.store.embedded import EmbeddedRedis
from vmpooler.store.redis import Store
from vmpooler.webhooks import WebhookDispatcher

log = logging.getLogger("vmpooler")


@dataclass(frozen=True, slots=True)
class Roles:
    api: bool = True
    manager: bool = True
    demo_traffic: bool = False


@dataclass(frozen=True, slots=True)
class Launch:
    """What one vmpooler process runs and where: the one argument of :func:`run` and of each child the
    supervisor starts."""

    settings: Settings
    roles: Roles
    host: str = "127.0.0.1"
    port: int = 0
    state_dir: Path = Path(".vmpooler")
    #: already-bound sockets the API serves on (one worker of several); None: it binds host:port itself
    sockets: list[socket.socket] | None = None


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM/SIGINT and stops everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def redis_target(settings: Settings, state_dir: Path) -> tuple[RedisSettings, EmbeddedRedis | None]:
    """The configured Redis (one server or a Sentinel group), or a private one started under
    ``state_dir`` when ``:redis:`` names none."""
    cfg = settings.redis
    embedded: EmbeddedRedis | None = None
    if cfg.embedded:
        embedded = EmbeddedRedis(state_dir / "redis")
        embedded.start()
        cfg = embedded.client_settings(cfg)
    log.info("using %s", cfg.describe())
    return cfg, embedded


def open_store(settings: Settings, state_dir: Path) -> tuple[Store, EmbeddedRedis | None]:
    cfg, embedded = redis_target(settings, state_dir)
    return _store(settings, cfg), embedded


def _store(settings: Settings, cfg: RedisSettings) -> Store:
    return Store(
        client_for(cfg),
        data_ttl_hours=cfg.data_ttl,
        events_max_length=settings.config.events_max_length,
        audit_max_length=settings.config.audit_max_length,
    )


async def serve_stored_pools(settings: Settings, store: Store, stop: asyncio.Event) -> Settings:
    """``settings`` unchanged when it configures pools; else serving the pools published in Redis, as the
    original does (waiting for Redis if it does not answer yet)."""
    if settings.pools_configured:
        return settings
    while True:
        try:
            records = await store.stored_pools()
            break
        except StoreError as exc:
            log.warning("no :pools: configured and Redis does not answer yet to read them: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
            if stop.is_set():
                return settings
    served, problems = with_stored_pools(settings, records)
    for problem in problems:
        log.warning("pool left out: %s", problem)
    names = ", ".join(pool.name for pool in served.pools) or "none"
    log.info("no :pools: in the configuration: serving the pools published in Redis (vmpooler__pools): %s", names)
    return served


async def run(launch: Launch) -> None:
    """Run until SIGTERM or SIGINT; then stop taking work, let in-flight work settle, and exit."""
    settings, roles, host, port, state_dir = launch.settings, launch.roles, launch.host, launch.port, launch.state_dir
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    redis_cfg, embedded = redis_target(settings, state_dir)
    store = _store(settings, redis_cfg)
    # the manager gets connections of its own: with hundreds of pool loops sharing the API's pool,
    # requests queued for a connection behind them (a checkout p99 of 0.6 s during a big fill)
    manager_store = _store(settings, redis_cfg) if roles.manager and roles.api else store
    settings = await serve_stored_pools(settings, store, stop)
    metrics = build_metrics(settings)
    providers = (
        registry.build_all(settings.pools, settings.providers, settings.config, state_dir) if roles.manager else {}
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        if roles.manager:
            manager = Manager(settings, manager_store, providers, metrics=metrics)
            tasks.append(asyncio.create_task(manager.run(stop), name="manager"))
            if settings.webhooks:
                hooks = WebhookDispatcher(settings.webhooks, manager_store.client)
                tasks.append(asyncio.create_task(hooks.run(stop), name="webhooks"))
        if roles.api:
            app = create_app(settings, store, metrics=metrics)
            config = uvicorn.Config(
                app,
                host=host,
                port=port,
                loop="none",
                lifespan="on",  # its shutdown closes the app's own clients (the OIDC verifier's)
                # X-Forwarded-For is read by the rate limiter, and only from :rate_limits: trusted_proxies;
                # uvicorn's own reading would trust it from any loopback peer, letting clients pick their address
                proxy_headers=False,
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=5,
                ssl_certfile=settings.config.api_tls_cert_file,
                ssl_keyfile=settings.config.api_tls_key_file,
                **server_options(settings.config),
            )
            server = _Server(config)
            # the objects made at start-up (app, routes, pydantic models) never die: freezing them makes
            # each full collection ~0.8 ms instead of ~30 ms, which was the whole p99 tail (BENCHMARKS.md)
            gc.collect()
            gc.freeze()
            tasks.append(asyncio.create_task(server.serve(sockets=launch.sockets), name="api"))
            scheme = "https" if settings.config.api_tls_cert_file else "http"
            log.info("API listening on %s://%s:%d (pid %d)", scheme, host, port, os.getpid())

            async def stop_api() -> None:
                await stop.wait()
                server.should_exit = True

            tasks.append(asyncio.create_task(stop_api(), name="api-stopper"))
            if roles.demo_traffic:
                tasks.append(asyncio.create_task(demo_traffic(app.state.vms, stop), name="demo-traffic"))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                stop.set()
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for provider in providers.values():
            await provider.close()
        await store.close()
        if manager_store is not store:
            await manager_store.close()
        if embedded is not None:
            embedded.stop()
