"""``vmpooler manager-alive``: the exec liveness probe of a ``vmpooler manager`` container.

The manager serves no HTTP, but it renews a heartbeat in Redis every few seconds, named
``<hostname>:<pid>``. The probe runs in the manager's container (same hostname) and asks Redis whether a
manager of this host has a heartbeat that has not lapsed. A wedged event loop stops the heartbeat, so the
probe fails and the orchestrator restarts the container.

Exit codes: 0 alive, or Redis cannot be asked (restarting a manager never brings Redis back, so an outage
must not restart every manager); 1 Redis answers and no manager of this host is alive; 2 configuration.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from vmpooler.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from vmpooler.config import Settings

EXIT_ALIVE, EXIT_DEAD, EXIT_CONFIG = 0, 1, 2


def manager_alive(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="YAML config (default: $VMPOOLER_CONFIG, $VMPOOLER_CONFIG_FILE, ./vmpooler.yaml)"
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="the manager's host name (default: this host's)")] = None,
) -> None:
    """Exit 0 when a `vmpooler manager` on this host has a live heartbeat in Redis (a liveness probe)."""
    import asyncio  # these here, not at the top: the client verbs of the same command start without them

    from vmpooler.config import load_settings

    try:
        settings, _ = load_settings(config)
    except ConfigError as exc:
        _finish(EXIT_CONFIG, "configuration: " + "; ".join(exc.problems))
    if settings.redis.embedded:
        _finish(EXIT_CONFIG, "redis.server: not set; the probe must read the Redis the manager uses")
    hostname = host or socket.gethostname()
    try:
        found = asyncio.run(_live_managers_of(settings, hostname))
    except StoreError as exc:
        _finish(EXIT_ALIVE, f"cannot ask Redis, so not failing the probe: {exc}")
    if not found:
        _finish(EXIT_DEAD, f"no manager on {hostname} has renewed its heartbeat")
    _finish(EXIT_ALIVE, f"alive: {', '.join(sorted(found))}")


async def _live_managers_of(settings: Settings, hostname: str) -> list[str]:
    from vmpooler.runtime import open_store

    store, _ = open_store(settings, Path("."))  # a configured Redis (checked above): nothing is started
    try:
        descriptions = await store.manager_descriptions()
    finally:
        await store.close()
    return [d for d in descriptions.values() if d.rpartition(":")[0] == hostname]


def _finish(code: int, message: str) -> NoReturn:
    typer.echo(message, err=code != EXIT_ALIVE)
    raise typer.Exit(code)


__all__ = ["manager_alive"]
