"""Run-time pool configuration through the API: size, template and clone-target overrides, resets,
and the configuration as the API reports it (harmless fields only, see config_view)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from vmpooler.api.services.config_view import full_config, pool_entry, without_userinfo
from vmpooler.auth.policy import read_policy
from vmpooler.auth.tokens import Identity
from vmpooler.config import Settings
from vmpooler.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound
from vmpooler.limits import pool_sizes
from vmpooler.store.redis import Store
from vmpooler.validate import template_problem

#: what the original reports under ``tracing`` when the configuration has none
DEFAULT_JAEGER = "http://localhost:14268/api/traces"


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

    def require_admin(self, caller: Identity | None) -> None:
        """Once admins are configured (``:auth: admins`` or an LDAP ``admin_group``), changing a pool
        is theirs alone: a size or template change touches everyone's VMs. Without admins any token
        may, as in the original; without ``:auth:`` anyone may (``caller`` is None)."""
        if caller is None or caller.admin:
            return
        auth = self.settings.auth or {}
        ldap = auth.get("ldap")
        if read_policy(auth).admins or (isinstance(ldap, Mapping) and ldap.get("admin_group")):
            raise Forbidden("changing a pool at run time needs an admin's token (see :auth: admins)")

    def _object(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body:
            raise BadRequest('send a JSON object of pool names, such as {"debian-12": "3"}')
        return body

    async def set_sizes(self, body: Any) -> bool:
        """Returns True when anything changed (201), False when every size already was so (200)."""
        wanted = self._object(body)
        limit = self.settings.config.max_pool_size
        bad = [pool for pool, size in wanted.items() if self.settings.pool(pool) is None or not _size(size, limit)]
        if bad:
            raise BadRequest(
                f"unknown pool, or size not an integer from 0 to {limit} (max_pool_size): "
                + ", ".join(map(str, dict.fromkeys(bad))),
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
            "pool_size_before_reset": pool_sizes(self.settings, {pool: before} if before is not None else {})[pool],
            "pool_size_before_overrides": config.size,
        }

    async def set_templates(self, body: Any) -> bool:
        wanted = self._object(body)
        problems = {p: self._template_problem(p, t) for p, t in wanted.items()}
        bad = [p for p, problem in problems.items() if problem is not None]
        if bad:
            raise BadRequest(
                "; ".join(f"{p}: {problems[p]}" for p in bad),
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
        return pool_sizes(self.settings, await self.store.overrides.all("size"))

    async def templates(self) -> dict[str, str]:
        overrides = await self.store.overrides.all("template")
        return {p.name: overrides.get(p.name, p.template) for p in self.settings.pools}

    async def pool_configuration(self) -> list[dict[str, Any]]:
        """Each pool as configured, with the overrides in force and whether its template is ready."""
        sizes, templates = await self.sizes(), await self.templates()
        targets = await self.store.overrides.all("clone_target")
        out = []
        for pool in self.settings.pools:
            entry = pool_entry(pool)
            entry["size"] = sizes[pool.name]
            entry["template"] = templates[pool.name]
            if pool.name in targets:
                entry["clone_target"] = targets[pool.name]
            prepared_template, _ = await self.store.overrides.prepared(pool.name)
            entry["template_ready"] = prepared_template == templates[pool.name]
            out.append(without_userinfo(entry))
        return out

    def full_config(self) -> dict[str, Any]:
        """The allow-listed configuration (see config_view), plus the indexes the original adds to its
        configuration at start-up (scripts read them from its ``/full_config``): ``pool_index``,
        ``alias``, ``pool_names``, ``uptime``."""
        served = full_config(self.settings)
        pools = self.settings.pools
        aliases: dict[str, Any] = {}
        for pool in pools:
            for alias in pool.alias:
                # as the original indexes them: a list alias names a list of pools, a string alias one pool
                if isinstance(pool.alias_as_configured, str):
                    aliases[alias] = pool.name
                elif isinstance(aliases.get(alias), list):
                    aliases[alias].append(pool.name)
                else:
                    aliases[alias] = [pool.name]
        tracing = self.settings.tracing or {"enabled": "false", "jaeger_host": DEFAULT_JAEGER}
        served["tracing"] = without_userinfo({k: v for k, v in tracing.items() if k in ("enabled", "jaeger_host")})
        served["pools_at_startup"] = served["pools"]
        served["pool_index"] = {pool.name: i for i, pool in enumerate(pools)}
        served["alias"] = aliases
        served["pool_names"] = list(dict.fromkeys([p.name for p in pools] + list(aliases)))
        served["uptime"] = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
        return served

    def _template_problem(self, pool_name: str, template: Any) -> str | None:
        if self.settings.pool(pool_name) is None:
            return "unknown pool"
        if not isinstance(template, str) or not template.strip() or not template.isprintable() or len(template) > 1024:
            return "a template is a non-empty line of text"
        # the pool's provider says which templates it accepts (a vSphere folder/name, an image in
        # the qemu provider's image directory, ...); the API learns it from the configuration
        return template_problem(self.settings, pool_name, template)

    def _pool(self, name: str) -> Any:
        pool = self.settings.pool(name)
        if pool is None:
            raise NotFound(f"unknown pool {name!r}")
        return pool


def _size(value: Any, limit: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    try:
        return 0 <= int(value) <= limit and str(int(value)) == str(value).strip()
    except ValueError:
        return False
