"""Checks that a Redis written by the original (Ruby) vmpooler reads correctly here (``vmpooler migrate-from-ruby``).

Read-only: it counts each pool's VMs the way the Store reads them, finds VM records that lack what the
manager needs, counts the original's clear-text tokens (adopted on first use) and sorts every
``vmpooler__*`` key into ours, the original's (ignored) and unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from vmpooler.auth.tokens import hint
from vmpooler.config import Settings
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store.audit import KeyAudit, KeyKind, classify
from vmpooler.store.records import VMField, parse_time
from vmpooler.store.redis import Store

#: the time fields the manager reads from a VM's record in each state (manager/pool.py); without one,
#: the timer it drives never runs out
NEEDED_TIMES: Final = {
    VMState.PENDING: (VMField.CLONE, "a pending VM never times out"),
    VMState.READY: (VMField.READY, "ready_ttl never retires the VM"),
    VMState.RUNNING: (VMField.CHECKOUT, "the VM's lifetime never runs out"),
}


@dataclass
class PoolCheck:
    name: str
    configured: bool
    counts: dict[str, int]
    #: one line per VM record that cannot be read fully
    problems: list[str] = field(default_factory=list)


@dataclass
class MigrationReport:
    pools: list[PoolCheck]
    #: hints (``abcdef…``) of the original's clear-text tokens that will be adopted on first use
    adoptable_tokens: list[str]
    #: hints of clear-text tokens without a user, which no one can use
    broken_tokens: list[str]
    #: key -> why it is safe to leave (keys only the original writes)
    ignored_keys: dict[str, str]
    unknown_keys: list[str]
    keys_read: int

    @property
    def problems(self) -> list[str]:
        found = [problem for pool in self.pools for problem in pool.problems]
        found += [f"token {token}: the record has no user; it can never be used" for token in self.broken_tokens]
        found += [f"key {key}: not a key vmpooler reads or writes" for key in self.unknown_keys]
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "pools": {p.name: {"configured": p.configured, "counts": p.counts} for p in self.pools},
            "tokens": {"adopted_on_first_use": self.adoptable_tokens, "unusable": self.broken_tokens},
            "ignored_keys": self.ignored_keys,
            "unknown_keys": self.unknown_keys,
            "keys_read": self.keys_read,
            "problems": self.problems,
        }


async def check(settings: Settings, store: Store) -> MigrationReport:
    audit = KeyAudit(store.client)
    configured = [pool.name for pool in settings.pools]
    registered = await audit.registered_pools()
    names = configured + sorted(registered - set(configured))
    counts = await store.counts(names)
    pools = []
    for name in names:
        pool = PoolCheck(name, name in configured, {state.value: counts[name][state] for state in LIVE_STATES})
        pool.problems = await _record_problems(store, name)
        if not pool.configured and any(pool.counts.values()):
            pool.problems.append(f"pool {name}: holds VMs but is not in the configuration; no manager will tend them")
        pools.append(pool)
    tokens = await audit.clear_tokens()
    all_keys = await audit.all_keys()
    sorted_keys = {key: classify(key) for key in all_keys}
    return MigrationReport(
        pools=pools,
        adoptable_tokens=[hint(token) for token, record in tokens.items() if record.get("user")],
        broken_tokens=[hint(token) for token, record in tokens.items() if not record.get("user")],
        ignored_keys={key: note for key, (kind, note) in sorted_keys.items() if kind is KeyKind.ORIGINAL_ONLY},
        unknown_keys=[key for key, (kind, _) in sorted_keys.items() if kind is KeyKind.UNKNOWN],
        keys_read=len(all_keys),
    )


async def _record_problems(store: Store, pool: str) -> list[str]:
    members = await store.all_members(pool)
    problems = []
    seen: dict[str, VMState] = {}
    for state in LIVE_STATES:
        names = sorted(members[state])
        for name, record in zip(names, await store.vms(names), strict=True):
            where = f"vm {name} ({state} in {pool})"
            if name in seen:
                problems.append(f"{where}: also {seen[name]}; a VM must be in one state only")
            seen.setdefault(name, state)
            if not (record.get(VMField.POOL) or record.get(VMField.TEMPLATE)):
                problems.append(f"{where}: its record names no pool or template; the API cannot find it")
            if state in NEEDED_TIMES:
                time_field, consequence = NEEDED_TIMES[state]
                value = record.get(time_field)
                if not value:
                    problems.append(f"{where}: no '{time_field}' time, so {consequence}")
                elif parse_time(value) is None:
                    problems.append(f"{where}: '{time_field}' time {value!r} is unreadable, so {consequence}")
    return problems
