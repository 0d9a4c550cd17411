"""The keys and arguments of one checkout.lua call, and what its reply means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.deadlines import zset_score
from vmpooler.store.eventlog import at_field, event_data
from vmpooler.store.history import count_field
from vmpooler.store.records import VMField, format_time
from vmpooler.store.replies import Fields, flat_pairs


@dataclass(frozen=True, slots=True)
class CheckoutCall:
    """checkout.lua's KEYS and ARGV for a batch of requests; ``pools`` in the order the script indexes them."""

    pools: list[str]
    keys: list[str]
    args: list[str]

    def taken(self, reply: Any) -> list[tuple[str, str]] | int:
        """[(pool, name), ...] in request order, or the index of the first request that was short of VMs."""
        if reply[0] == 0:
            return int(reply[1]) - 1
        flat = reply[1:]
        return [(self.pools[int(flat[i]) - 1], str(flat[i + 1])) for i in range(0, len(flat), 2)]


def checkout_call(
    requests: Sequence[Sequence[str]],
    now: float,
    fields: Fields | None,
    *,
    token_id: str | None,
    ondemand: tuple[str, str, str] | None,
    lifetime_hours: float,
    index_sets: Sequence[str],
    events_max_length: int,
) -> CheckoutCall:
    """The call that takes one ready VM per request (each a list of candidate pools); see checkout.lua's header."""
    pools: list[str] = []
    index: dict[str, int] = {}
    # the provisioner retries an empty pool until its clones arrive: only the API's refusals count
    refused = count_field("refused", now) if ondemand is None else ""
    ends = zset_score(now + lifetime_hours * 3600 if lifetime_hours > 0 else math.inf)
    args = [format_time(now), keys.VM_PREFIX, "", str(len(requests)), count_field("checkouts", now), refused, ends]
    for candidates in requests:
        args.append(str(len(candidates)))
        for pool in candidates:
            if pool not in index:
                pools.append(pool)
                index[pool] = len(pools)
            args.append(str(index[pool]))
    pairs = flat_pairs(fields)
    owner = str((fields or {}).get(VMField.USER, ""))
    event = [str(events_max_length), owner, event_data(**{"from": "ready"}), at_field(now)]
    args += [str(len(pairs) // 2), *pairs, *event, keys.EVENTS, *pools]
    args[2] = str(len(pools))
    script_keys = [
        key
        for pool in pools
        for key in (
            keys.state_set(VMState.READY, pool),
            keys.ready_queue(pool),
            keys.state_set(VMState.RUNNING, pool),
            keys.active(pool),
            keys.history_counts(pool),
            keys.ready_since(pool),
            keys.checked_at(pool),
            keys.lifetime_ends(pool),
        )
    ]
    script_keys.append(keys.EVENT_STREAM)
    if token_id is not None:
        script_keys.append(keys.token_vms(token_id))
    if ondemand is not None:
        script_keys.append(keys.request_vms(*ondemand))
    script_keys += index_sets
    return CheckoutCall(pools, script_keys, args)
