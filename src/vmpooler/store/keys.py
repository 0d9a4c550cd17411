"""Every Redis key name vmpooler uses, in the original vmpooler's layout (reference §4).

Operators' ``redis-cli`` habits and data written by the Ruby vmpooler keep working: a VM's
state is the set ``vmpooler__<state>__<pool>`` it is a member of, its record the hash
``vmpooler__vm__<name>``. Keys marked *ours* are additions the original does not have.
"""

from __future__ import annotations

from datetime import date

from vmpooler.states import VMState

PREFIX = "vmpooler__"

POOLS = f"{PREFIX}pools"
LASTBOOT = f"{PREFIX}lastboot"
CONFIG_POOLSIZE = f"{PREFIX}config__poolsize"
CONFIG_TEMPLATE = f"{PREFIX}config__template"
CONFIG_CLONE_TARGET = f"{PREFIX}config__clone_target"
TEMPLATE_PREPARED = f"{PREFIX}template__prepared"
#: ours: the clone target each pool's VMs were made for, so a change drains the pool exactly once
CLONE_TARGET_PREPARED = f"{PREFIX}clone_target__prepared"
POOLRESET = f"{PREFIX}poolreset"
TASKS_SNAPSHOT = f"{PREFIX}tasks__snapshot"
TASKS_SNAPSHOT_REVERT = f"{PREFIX}tasks__snapshot-revert"
TASKS_DISK = f"{PREFIX}tasks__disk"
#: ours: in-flight clones as a zset member -> lease expiry, so a crashed manager's slots expire
#: (the original's ``vmpooler__tasks__clone`` counter leaks a slot per crash)
CLONE_SLOTS = f"{PREFIX}tasks__clone_slots"
VM_PREFIX = f"{PREFIX}vm__"


def state_set(state: VMState, pool: str) -> str:
    return f"{state_set_prefix(state)}{pool}"


def state_set_prefix(state: VMState) -> str:
    """What every pool's ``state`` set name starts with: a Lua script given a variable list of pools
    appends each pool's name to it (so the separator is spelled here, not in the script)."""
    return f"{PREFIX}{state.value}__"


def suspended(pool: str) -> str:
    """Ours: the pool's suspended tier (VMs whose RAM is saved to disk, resumed when the ready VMs fall
    short): the state set of ``VMState.SUSPENDED``, ``vmpooler__suspended__<pool>``."""
    return state_set(VMState.SUSPENDED, pool)


def ready_queue(pool: str) -> str:
    """Ours: FIFO of ready VM names, so checkout hands out the oldest in O(1)."""
    return f"{PREFIX}readyqueue__{pool}"


def ready_since(pool: str) -> str:
    """Ours: zset of the pool's ready VMs by the time each became ready; those past ``ready_ttl``
    are ``ZRANGEBYSCORE`` up to now minus the TTL, so a pass reads only the VMs due."""
    return f"{PREFIX}ready_since__{pool}"


def checked_at(pool: str) -> str:
    """Ours: zset of the pool's ready VMs by the time each last passed its check (or became ready)."""
    return f"{PREFIX}checked_at__{pool}"


def handout_stats(pool: str) -> str:
    """Ours: hand-out checks of the pool's VMs: ``checks:<minute>`` and ``failures:<minute>`` counts
    (the manager's failure rate) and ``quarantined``, the total ever quarantined.
    The pool's quarantined VMs themselves are the state set ``vmpooler__quarantine__<pool>``."""
    return f"{PREFIX}handout__{pool}"


def lifetime_ends(pool: str) -> str:
    """Ours: zset of the pool's running VMs by the time each one's lifetime ends (+inf: no limit)."""
    return f"{PREFIX}lifetime_ends__{pool}"


def vm(name: str) -> str:
    # scripts that learn a VM's name only inside Redis (checkout, pool_view) append it to VM_PREFIX
    return f"{VM_PREFIX}{name}"


def pool(name: str) -> str:
    return f"{PREFIX}pool__{name}"


def active(pool: str) -> str:
    return f"{PREFIX}active__{pool}"


def empty_flag(pool: str) -> str:
    return f"{PREFIX}empty__{pool}"


def clone_times(day: date) -> str:
    return f"{PREFIX}clone__{day.isoformat()}"


def boot_times(day: date) -> str:
    return f"{PREFIX}boot__{day.isoformat()}"


def duration_totals(kind: str, day: date) -> str:
    """Ours: count, total, min and max of a day's ``kind`` ('boot' or 'clone') durations."""
    return f"{PREFIX}{kind}_totals__{day.isoformat()}"


def tags(day: date) -> str:
    return f"{PREFIX}tag__{day.isoformat()}"


def token(value: str) -> str:
    """A token record: the original keys it by the token itself; we key it by the token's hash."""
    return f"{PREFIX}token__{value}"


def user_tokens(user: str) -> str:
    """Ours: the ids of a user's tokens, so listing them needs no scan."""
    return f"{PREFIX}user_tokens__{user}"


def token_vms(token_id: str) -> str:
    """Ours: the VMs checked out with a token, so ``GET /token/<t>`` needs no scan of every pool."""
    return f"{PREFIX}token_vms__{token_id}"


def request_vms(request_id: str, alias: str, pool: str) -> str:
    """The VMs delivered to one item of an on-demand request, as the original names the set."""
    return f"{PREFIX}{request_id}__{alias}__{pool}"


PROVISIONING_REQUEST = f"{PREFIX}provisioning__request"
PROVISIONING_PROCESSING = f"{PREFIX}provisioning__processing"
#: ours: VMs each pool must clone beyond its size for open on-demand requests (pool -> count)
ONDEMAND_DEMAND = f"{PREFIX}ondemand__demand"
#: ours: held by the one manager that runs the on-demand provisioner at a time
ONDEMAND_LOCK = f"{PREFIX}ondemand__lock"


def ondemand_request(request_id: str) -> str:
    return f"{PREFIX}odrequest__{request_id}"


def clone_failures(pool: str) -> str:
    """Ours: a counter of failed clones, so an on-demand request can count failures since it began."""
    return f"{PREFIX}clone_failures__{pool}"


def clone_permanent_error(pool: str) -> str:
    """Ours: the last clone error retrying cannot fix (bad template...), kept briefly."""
    return f"{PREFIX}clone_permanent_error__{pool}"


#: ours: manager id -> time of its last heartbeat, so /healthcheck can tell whether any manager runs
MANAGERS = f"{PREFIX}managers"


def manager(manager_id: str) -> str:
    """Ours: present while that manager process lives (a heartbeat with a short expiry)."""
    return f"{PREFIX}manager__{manager_id}"


def rate_limit(kind: str, subject: str) -> str:
    """A request counter of one rate limit (``global_per_ip``...) for one client (``ip:<address>`` or
    ``token:<hash>``), as the original names it. It expires when its window ends, so no window start
    is part of the name."""
    return f"{PREFIX}ratelimit__{kind}__{subject}"


def history(pool: str, resolution: str) -> str:
    """Ours: a pool's time series at ``resolution`` ('1m' or '1h'): zset of JSON points by time."""
    return f"{PREFIX}history__{pool}__{resolution}"


def history_all(resolution: str) -> str:
    """Ours: every pool's boots and clones together at ``resolution``, for true all-pools percentiles."""
    return f"{PREFIX}history_all__{resolution}"


def history_counts(pool: str) -> str:
    """Ours: per-minute event counts waiting to be folded into the next history point."""
    return f"{PREFIX}history_counts__{pool}"


def history_boots(pool: str, minute: int) -> str:
    """Ours: boot durations of one minute, for that minute's percentiles."""
    return f"{PREFIX}history_boots__{pool}__{minute}"


def autoscale_profile(pool: str) -> str:
    """Ours: what an autoscaled pool's manager learned (its demand by hour of week, its refill time), as
    JSON, so a restarted manager keeps it."""
    return f"{PREFIX}autoscale__{pool}"


#: ours: pool -> JSON of its manager's latest autoscale decision (target, reason, idle VM-seconds per
#: checkout), for /status
AUTOSCALE_DECISIONS = f"{PREFIX}autoscale_decisions"


def checkout_waits(pool: str) -> str:
    """Ours: a pool's checkouts per hour and those that waited longer than its autoscale target
    (fields ``n:<hour>``, ``late:<hour>``), for SLO attainment and burn rate."""
    return f"{PREFIX}checkout_waits__{pool}"


def history_lock(minute: int) -> str:
    return f"{PREFIX}history_lock__{minute}"


#: ours: pool -> JSON of why the manager cannot fill it now (circuit breaker open, provider down);
#: one hash so /status reads every pool's health in one call
POOL_HEALTH = f"{PREFIX}pool_health"


def lease(pool: str) -> str:
    """Ours: which manager reconciles ``pool`` now (owner and fencing value, with an expiry)."""
    return f"{PREFIX}lease__{pool}"


def lease_fence(pool: str) -> str:
    """Ours: the counter a pool's fencing values come from; never expires, so they only grow."""
    return f"{PREFIX}lease_fence__{pool}"


#: ours: a pub/sub channel carrying the name of a pool whose VMs were checked out or returned, or
#: whose overrides changed: it wakes the pool's manager at once (polling is only the fallback)
EVENTS = f"{PREFIX}events"

#: ours: the event stream (docs/events.md): one entry per lifecycle change, written by the same script
#: or MULTI as the change. Same name as the pub/sub channel above: Redis keeps channels and keys apart.
EVENT_STREAM = f"{PREFIX}events"

#: ours: the audit trail (docs/audit.md): one entry per state-changing request or refusal
AUDIT_STREAM = f"{PREFIX}audit"


def webhook_group(hook: str) -> str:
    """Ours, not a key: the consumer group on ``EVENT_STREAM`` a webhook's deliveries read through."""
    return f"{PREFIX}webhook__{hook}"


def webhook_log(hook: str) -> str:
    """Ours: a webhook's recent delivery attempts, newest first, as JSON (a capped list)."""
    return f"{PREFIX}webhook_log__{hook}"


def webhook_stats(hook: str) -> str:
    """Ours: a webhook's counters (delivered, failed attempts, dead) and its last success and error."""
    return f"{PREFIX}webhook_stats__{hook}"


def webhook_dead(hook: str) -> str:
    """Ours: a webhook's dead letters: event id -> JSON of the event and its last error."""
    return f"{PREFIX}webhook_dead__{hook}"


def webhook_dead_order(hook: str) -> str:
    """Ours: zset of a webhook's dead letters by when they died, so the oldest go first past the cap."""
    return f"{PREFIX}webhook_dead_order__{hook}"


def webhook_redeliver(hook: str) -> str:
    """Ours: events an admin asked to send again to a webhook (JSON), taken by a delivery worker."""
    return f"{PREFIX}webhook_redeliver__{hook}"


# ---- checkouts that wait their turn (docs/waiting.md) ------------------------------------------

#: ours: the counter waiting requests' arrival numbers come from (FIFO order within an owner)
WAIT_SEQ = f"{PREFIX}wait_seq"
#: ours: a pub/sub channel carrying the name of a pool whose waiters should look again: a VM of it
#: became ready, or a waiter of it was served or left (polling is only the fallback)
WAIT_WAKE = f"{PREFIX}wait_wake"
#: the prefix of every waiting request's hash (``wait_request``), for the scripts that read them by id
WAIT_REQUEST_PREFIX = f"{PREFIX}wait_request__"


def wait_queue(pool: str) -> str:
    """Ours: zset of the ids of a pool's waiting checkout requests by arrival number."""
    return f"{PREFIX}wait_queue__{pool}"


def wait_request(request_id: str) -> str:
    """Ours: one waiting request: owner, weight, count, arrival number, when it joined, heartbeat deadline."""
    return f"{WAIT_REQUEST_PREFIX}{request_id}"


def wait_vtime(pool: str) -> str:
    """Ours: owner -> VMs served per unit of weight while the pool had waiters (the fair-share clock)."""
    return f"{PREFIX}wait_vtime__{pool}"


def owner_vms(owner: str) -> str:
    """Ours: names of the VMs an owner checked out (pruned of those no longer running), for quotas."""
    return f"{PREFIX}owner_vms__{owner}"
