"""Opens the Redis client (one server, or the master a Sentinel group names) and turns redis-py's
failures into our StoreError tree."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError
from redis.backoff import ExponentialBackoff

from vmpooler.config import RedisSettings
from vmpooler.errors import StoreError, StoreUnavailable
from vmpooler.store.gate import GatedConnection, GatedPool, GatedSSLConnection, GatedUnixConnection
from vmpooler.store.sentinel import master_client

Redis = aioredis.Redis

#: the service's floor on pooled connections: the manager's pool loops share one client, the API another
MIN_CONNECTIONS = 64
#: how long a call may wait for a free pooled connection. Not the socket timeout: with a thousand pools
#: a burst of passes queues for the connections (each held for one round trip only), and that is load,
#: not an outage; a Redis that hangs is caught by the gate (store/gate.py), which frees them all at once
POOL_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS for the connections: ``ca_file`` None trusts the system's CAs; ``verify`` False checks nothing."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True

    def redis_kwargs(self) -> dict[str, Any]:
        return {
            "ssl_ca_certs": self.ca_file,
            "ssl_certfile": self.cert_file,
            "ssl_keyfile": self.key_file,
            "ssl_cert_reqs": "required" if self.verify else "none",
            "ssl_check_hostname": self.verify,
        }


def _retry() -> Retry:
    # one quick retry rides over a dropped idle connection; more would turn an outage into a hang. A
    # timeout is not retried: against a stalled Redis that doubled each wait (nested in the reconnect's
    # own retry: up to 4x socket_timeout per call), and the command may still run when Redis wakes
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1, supported_errors=(redis_errors.ConnectionError,))


def _options(
    *, db: int, username: str | None, password: str | None, socket_timeout: float, max_connections: int
) -> dict[str, Any]:
    return {
        "db": db,
        # wait for a free connection rather than fail when all are busy
        "timeout": max(socket_timeout, POOL_WAIT_SECONDS),
        "username": username,
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "decode_responses": True,
        "max_connections": max_connections,
        "health_check_interval": 30,
        "retry": _retry(),
        "retry_on_error": [redis_errors.ConnectionError],
    }


def connect(
    host: str,
    port: int,
    *,
    db: int = 0,
    username: str | None = None,
    password: str | None = None,
    tls: TlsOptions | None = None,
    socket_timeout: float = 5.0,
    max_connections: int = MIN_CONNECTIONS,
    unix_socket: str | None = None,
) -> Redis:
    """A client that answers or fails within ``socket_timeout``: a dead Redis is an error, not a hang."""
    common = _options(
        db=db, username=username, password=password, socket_timeout=socket_timeout, max_connections=max_connections
    )
    # the gate fails calls at once while Redis hangs, rather than each waiting socket_timeout (store/gate.py)
    if unix_socket:
        pool = GatedPool(connection_class=GatedUnixConnection, path=unix_socket, **common)
    elif tls is not None:
        pool = GatedPool(connection_class=GatedSSLConnection, host=host, port=port, **common, **tls.redis_kwargs())
    else:
        pool = GatedPool(connection_class=GatedConnection, host=host, port=port, **common)
    return aioredis.Redis(connection_pool=pool)


def client_for(cfg: RedisSettings) -> Redis:
    """The client ``cfg`` describes: its Sentinel group's master, else ``server``:``port``.
    (An embedded Redis is the caller's to start; it passes a copy naming it as ``server``.)"""
    tls = TlsOptions(cfg.tls_ca_file, cfg.tls_cert_file, cfg.tls_key_file, cfg.tls_verify) if cfg.tls else None
    max_connections = max(cfg.connection_pool_size, MIN_CONNECTIONS)
    if not cfg.sentinels:
        if cfg.server is None:
            raise StoreError("redis: no server and no sentinels configured")
        return connect(
            cfg.server,
            cfg.port,
            db=cfg.db,
            username=cfg.username,
            password=cfg.password_value(),
            tls=tls,
            socket_timeout=cfg.socket_timeout,
            max_connections=max_connections,
        )
    if cfg.master_name is None:
        raise StoreError("redis.master_name: required when redis.sentinels is set")
    options = _options(
        db=cfg.db,
        username=cfg.username,
        password=cfg.password_value(),
        socket_timeout=cfg.socket_timeout,
        max_connections=max_connections,
    )
    sentinel_options: dict[str, Any] = {
        "username": cfg.sentinel_username,
        "password": cfg.sentinel_password_value(),
        "socket_timeout": cfg.socket_timeout,
        "socket_connect_timeout": cfg.socket_timeout,
        "retry": _retry(),
    }
    if tls is not None:
        # a TLS deployment secures its sentinels the same way (tls-port on each sentinel)
        options |= {"ssl": True, **tls.redis_kwargs()}
        sentinel_options |= {"ssl": True, **tls.redis_kwargs()}
    addresses = [(sentinel.host, sentinel.port) for sentinel in cfg.sentinels]
    return master_client(addresses, cfg.master_name, sentinel_options=sentinel_options, options=options)


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Re-raise redis-py errors as StoreUnavailable (cannot reach Redis) or StoreError (anything else).

    Bad credentials and a failed TLS handshake are StoreError, not "unreachable": waiting will not help,
    and the message says which setting to look at."""
    try:
        yield
    except redis_errors.AuthenticationError as exc:
        raise StoreError(f"Redis refused the credentials (check redis.username and redis.password): {exc}") from exc
    except MasterNotFoundError as exc:
        # redis-py appends each sentinel client's repr (hundreds of characters, no cause): keep the sentence
        what = str(exc).split(" : ", 1)[0]
        raise StoreUnavailable(
            f"Redis Sentinel: {what} (no sentinel in redis.sentinels answered with a live master named so)"
        ) from exc
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        if _is_tls_failure(exc):
            raise StoreError(
                f"TLS with Redis failed (check redis.tls_ca_file, redis.tls_verify and the server certificate): {exc}"
            ) from exc
        raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc
    except redis_errors.BusyLoadingError as exc:
        raise StoreUnavailable("Redis is still loading its data set; retry shortly") from exc
    except redis_errors.RedisError as exc:
        raise StoreError(f"Redis error: {exc}") from exc


def _is_tls_failure(exc: BaseException) -> bool:
    # redis-py raises a new ConnectionError while handling the ssl error: it is the context, not the cause
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
