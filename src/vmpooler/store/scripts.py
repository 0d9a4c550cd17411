"""Loads the Lua scripts beside this module and registers them with a client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from vmpooler.store.connection import Redis


def load(client: Redis, name: str) -> AsyncScript:
    """Register ``scripts/<name>.lua`` with ``client``."""
    return client.register_script(_source(name))


def queue(pipe: Pipeline, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue ``script`` on ``pipe`` as a bare EVALSHA. Called on a pipeline, redis-py's Script asks
    SCRIPT EXISTS before every execute: one round trip more. Should Redis have lost the script (a
    restart), the reply is a NoScriptError: ``settle`` runs the fallback given for it."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)


async def settle(replies: Sequence[Any], fallbacks: Mapping[int, Callable[[], Awaitable[Any]]]) -> None:
    """Raise the first error among a pipeline's ``replies`` (run with ``raise_on_error=False``), but
    for a NoScriptError at an index of ``fallbacks``: run that fallback (the script, loading it) instead."""
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError) and index in fallbacks:
            await fallbacks[index]()
        elif isinstance(reply, Exception):
            raise reply


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


def load_with(client: Redis, main: str, functions: tuple[str, ...]) -> AsyncScript:
    """Register ``scripts/<main>.lua`` after the scripts it calls as local functions. ``checkout`` becomes
    ``checkout(KEYS, ARGV)`` (the parameters shadow the globals), so the scripts that check quotas or serve
    waiting requests hand VMs out with the one checkout there is; the others define their function."""
    parts = []
    for name in functions:
        source = _source(name)
        parts.append(f"local function {name}(KEYS, ARGV)\n{source}\nend\n" if name == "checkout" else source)
    return client.register_script("\n".join([*parts, _source(main)]))
