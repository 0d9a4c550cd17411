"""Run-time pool configuration through the API: size, template and clone-target overrides, resets,
and the configuration as the API reports it (with every secret redacted)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from vmpooler.config import Settings
from vmpooler.errors import BadRequest, MethodNotAllowed, NotFound
from vmpooler.store.redis import Store

SECRET_KEY = re.compile(r"pass(word)?|secret|token|key|credential", re.IGNORECASE)
REDACTED = "********"
#: what the original reports under ``tracing`` when the configuration has none
DEFAULT_JAEGER = "http://localhost:14268/api/traces"


def redact(value: Any, key: str = "") -> Any:
    """A copy with the value of every secret-looking key replaced."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if SECRET_KEY.search(key) and value not in (None, ""):
        return REDACTED
    return value


class RuntimeConfig:
    """What the /config routes do. Changes are overrides in Redis that every manager reads."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.started_at = clock()
        #: called after every change (the status report drops its cache)
        self.on_change: Callable[[], None] = lambda: None

    def require_enabled(self) -> None:
        if not self.settings.config.experimental_features:
            raise MethodNotAllowed("changing the configuration at run time needs experimental_features: true")

    def _object(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body:
            raise BadRequest('send a JSON object of pool names, such as {"debian-12": "3"}')
        return body

    async def set_sizes(self, body: Any) -> bool:
        """Returns True when anything changed (201), False when every size already was so (200)."""
        wanted = self._object(body)
        bad = [pool for pool, size in wanted.items() if self.settings.pool(pool) is None or not _size(size)]
        if bad:
            raise BadRequest(
                f"unknown pool or size not a non-negative integer: {', '.join(map(str, dict.fromkeys(bad)))}",
                not_configured=list(dict.fromkeys(bad)),
            )
        current = await self.sizes()
        changes = {pool: str(int(size)) for pool, size in wanted.items() if current[pool] != int(size)}
        if changes:
            await self.store.overrides.set("size", changes)
            self.on_change()
        return bool(changes)

    async def reset_size(self, pool: str) -> tuple[bool, dict[str, Any]]:
        config = self._pool(pool)
        before = await self.store.overrides.clear("size", pool)
        self.on_change()
        return before is not None, {
            "pool_size_before_reset": int(before) if before is not None else config.size,
            "pool_size_before_overrides": config.size,
        }

    async def set_templates(self, body: Any) -> bool:
        wanted = self._object(body)
        bad = [p for p, t in wanted.items() if not self._template_ok(p, t)]
        if bad:
            raise BadRequest(
                "unknown pool, or template not of the form folder/name: " + ", ".join(map(str, bad)),
                bad_templates=bad,
            )
        current = await self.templates()
        changes = {pool: str(t) for pool, t in wanted.items() if current[pool] != t}
        if changes:
            await self.store.overrides.set("template", changes)
        return bool(changes)

    async def reset_template(self, pool: str) -> tuple[bool, dict[str, Any]]:
        config = self._pool(pool)
        before = await self.store.overrides.clear("template", pool)
        return before is not None, {
            "template_before_reset": before if before is not None else config.template,
            "template_before_overrides": config.template,
        }

    async def set_clone_targets(self, body: Any) -> bool:
        wanted = self._object(body)
        bad = [p for p, t in wanted.items() if self.settings.pool(p) is None or not isinstance(t, str) or not t]
        if bad:
            raise BadRequest("unknown pool or empty clone target: " + ", ".join(map(str, bad)), bad_templates=bad)
        current = await self.store.overrides.all("clone_target")
        changes = {
            p: t
            for p, t in wanted.items()
            if current.get(p, self.settings.pool(p).clone_target or "") != t  # type: ignore[union-attr]
        }
        if changes:
            await self.store.overrides.set("clone_target", changes)
        return bool(changes)

    async def reset_pools(self, body: Any) -> None:
        wanted = self._object(body)
        bad = [p for p in wanted if self.settings.pool(p) is None]
        if bad:
            raise BadRequest("unknown pool: " + ", ".join(bad), bad_pools=bad)
        await self.store.overrides.request_reset(list(wanted))

    async def sizes(self) -> dict[str, int]:
        overrides = await self.store.overrides.all("size")
        return {p.name: int(overrides.get(p.name, p.size)) for p in self.settings.pools}

    async def templates(self) -> dict[str, str]:
        overrides = await self.store.overrides.all("template")
        return {p.name: overrides.get(p.name, p.template) for p in self.settings.pools}

    async def pool_configuration(self) -> list[dict[str, Any]]:
        """Each pool as configured, with the overrides in force and whether its template is ready."""
        sizes, templates = await self.sizes(), await self.templates()
        targets = await self.store.overrides.all("clone_target")
        out = []
        for pool in self.settings.pools:
            entry = pool.model_dump(exclude={"provider_options"}, exclude_none=True)
            entry.update(pool.provider_options)
            if pool.alias:
                entry["alias"] = pool.alias_as_configured
            entry["size"] = sizes[pool.name]
            entry["template"] = templates[pool.name]
            if pool.name in targets:
                entry["clone_target"] = targets[pool.name]
            prepared_template, _ = await self.store.overrides.prepared(pool.name)
            entry["template_ready"] = prepared_template == templates[pool.name]
            out.append(redact(entry))
        return out

    def full_config(self) -> dict[str, Any]:
        """The settings, plus the indexes the original adds to its configuration at start-up (scripts
        read them from its ``/full_config``): ``pool_index``, ``alias``, ``pool_names``, ``uptime``."""
        dumped = self.settings.model_dump(mode="json")
        pools = self.settings.pools
        aliases: dict[str, Any] = {}
        for i, pool in enumerate(pools):
            dumped["pools"][i]["alias"] = pool.alias_as_configured
            for alias in pool.alias:
                # as the original indexes them: a list alias names a list of pools, a string alias one pool
                if isinstance(pool.alias_as_configured, str):
                    aliases[alias] = pool.name
                elif isinstance(aliases.get(alias), list):
                    aliases[alias].append(pool.name)
                else:
                    aliases[alias] = [pool.name]
        dumped["tracing"] = dumped.get("tracing") or {"enabled": "false", "jaeger_host": DEFAULT_JAEGER}
        dumped["pools_at_startup"] = dumped["pools"]
        dumped["pool_index"] = {pool.name: i for i, pool in enumerate(pools)}
        dumped["alias"] = aliases
        dumped["pool_names"] = list(dict.fromkeys([p.name for p in pools] + list(aliases)))
        dumped["uptime"] = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
        return dict(redact(dumped))

    def _template_ok(self, pool_name: str, template: Any) -> bool:
        pool = self.settings.pool(pool_name)
        if pool is None or not isinstance(template, str) or not template.strip():
            return False
        # vSphere templates are inventory paths (folder/name), as the original insists; other
        # providers name templates their own way (a qemu base image is a file path)
        return pool.provider != "vsphere" or _template_path(template)

    def _pool(self, name: str) -> Any:
        pool = self.settings.pool(name)
        if pool is None:
            raise NotFound(f"unknown pool {name!r}")
        return pool


def _size(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return int(value) >= 0 and str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        return False


def _template_path(value: Any) -> bool:
    return isinstance(value, str) and "/" in value and not value.startswith("/") and not value.endswith("/")
