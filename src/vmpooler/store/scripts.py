"""Loads the Lua scripts beside this module and registers them with a client."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.commands.core import AsyncScript

from vmpooler.store.connection import Redis


def load(client: Redis, name: str) -> AsyncScript:
    """Register ``scripts/<name>.lua`` with ``client``."""
    return client.register_script(_source(name))


def _source(name: str) -> str:
    body = _read(f"{name}.lua")
    # the event stream's one Lua writer is shared, not copied: a script that calls it gets it prepended
    if "emit_event(" in body:
        return _read("lib/emit_event.lua") + body
    return body


def _read(path: str) -> str:
    return resources.files("vmpooler.store").joinpath("scripts", path).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class Scripts:
    create_pending: AsyncScript
    move: AsyncScript
    destroyed: AsyncScript
    discover: AsyncScript
    clone_slot: AsyncScript
    checkout: AsyncScript
    counts: AsyncScript
    pool_view: AsyncScript
    tag_vm: AsyncScript
    set_lifetime: AsyncScript
    expiring: AsyncScript

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        # EVALSHA with a fallback to EVAL: survives a Redis restart that flushed the script cache
        return cls(**{name: client.register_script(_source(name)) for name in cls.__dataclass_fields__})
