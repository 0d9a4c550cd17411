"""The checkout's hand-out step: check each VM taken before the reply; replace the ones that fail.

The VMs are first taken atomically, as every checkout takes them (READY -> RUNNING, under the caller's
token): from then on no other request can be handed them, and were this process to die now they stay
running and expire with their lifetime, so nothing is handed out twice and nothing is lost. Each is then
checked (concurrently, within ``budget_ms``); one that fails moves RUNNING -> QUARANTINE and its request
takes the next ready VM, checked in turn. When a request can no longer be served the whole batch is
undone: the VMs that passed go back to the head of their ready queue (RUNNING -> READY; no reply named
them) and the caller gets the usual 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from vmpooler.config import Settings
from vmpooler.config.handout import HandoutCheck
from vmpooler.health.probe import probe
from vmpooler.metrics.base import Metrics
from vmpooler.states import VMState
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.api")

Taken = list[tuple[str, str]]
#: takes one ready VM per request (each a list of candidate pools), all or nothing (Store.checkout)
Take = Callable[[Sequence[Sequence[str]]], Awaitable[Taken | int]]
#: rounds of replacements one checkout tries before it gives up with a 503 (each round quarantines
#: every VM that failed, so a pool of dead VMs runs dry in a few rounds anyway)
MAX_ROUNDS = 6


class HandoutGate:
    def __init__(
        self, settings: Settings, store: Store, clock: Callable[[], float] = time.time, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics or Metrics()

    def check_of(self, pool: str) -> HandoutCheck | None:
        config = self.settings.pool(pool)
        return config.handout_check if config is not None else None

    def applies(self, taken: Taken) -> bool:
        return any(self.check_of(pool) is not None for pool, _ in taken)

    async def confirm(
        self, requests: Sequence[Sequence[str]], taken: Taken, take: Take, token_id: str | None
    ) -> Taken | int:
        """``taken`` (one VM per request) with every VM that fails its check replaced by one that
        passes; or, when a request ran short, the index of that request (then nothing stays taken)."""
        final = list(taken)
        todo = list(range(len(final)))
        for _ in range(MAX_ROUNDS):
            failed = await self._check(final, todo, token_id)
            if not failed:
                return final
            more = await take([requests[i] for i in failed])
            if isinstance(more, int):
                await self._give_back([final[i] for i in range(len(final)) if i not in failed], token_id)
                return failed[more]
            for i, vm in zip(failed, more, strict=True):
                final[i] = vm
            todo = failed
        # still failing after every round: give all back rather than hand out an unchecked VM
        failed = await self._check(final, todo, token_id)
        if not failed:
            return final
        await self._give_back([final[i] for i in range(len(final)) if i not in failed], token_id)
        return failed[0]

    async def _check(self, final: Taken, indexes: list[int], token_id: str | None) -> list[int]:
        """Check the VMs at ``indexes``; quarantine those that fail and return their indexes."""
        now = self.clock()
        due: list[tuple[int, HandoutCheck]] = []
        for i in indexes:
            check = self.check_of(final[i][0])
            if check is not None:
                due.append((i, check))
        if not due:
            return []
        targets = await self.store.handout.targets([final[i][1] for i, _ in due])
        addresses = {final[i][1]: address for (i, _), (address, _) in zip(due, targets, strict=True)}
        # a VM that passed within cache_s (given back by a batch that could not complete) is not asked again
        due = [
            (i, check)
            for (i, check), (_, passed) in zip(due, targets, strict=True)
            if not (check.cache_s > 0 and passed is not None and now - passed <= check.cache_s)
        ]
        verdicts = await asyncio.gather(
            *(probe(check, addresses[final[i][1]], self._hostname(*final[i])) for i, check in due)
        )
        outcomes: dict[str, tuple[int, int]] = {}
        passed_now, failed = [], []
        for (i, check), verdict in zip(due, verdicts, strict=True):
            pool, name = final[i]
            checks, failures = outcomes.get(pool, (0, 0))
            outcomes[pool] = (checks + 1, failures + (verdict is not None))
            if verdict is None:
                passed_now.append(name)
                continue
            failed.append(i)
            why = f"hand-out check {check.describe()} failed: {verdict}"
            self.metrics.error("handout_check_failed", pool)
            if await self.store.handout.undo(pool, name, VMState.QUARANTINE, now, reason=why, token_id=token_id):
                log.warning("pool %s vm %s: running -> quarantine (%s)", pool, name, why)
        await self.store.handout.record(outcomes, passed_now, now)
        return failed

    async def _give_back(self, vms: Taken, token_id: str | None) -> None:
        now = self.clock()
        for pool, name in vms:
            await self.store.handout.undo(pool, name, VMState.READY, now, token_id=token_id)

    def _hostname(self, pool: str, name: str) -> str:
        config = self.settings.pool(pool)
        domain = self.settings.domain_for(config) if config is not None else None
        return f"{name}.{domain}" if domain else name
