"""A VM's record (the ``vmpooler__vm__<name>`` hash) as a typed value: field names, times, tolerant reading."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

#: Ruby's ``Time#to_s``, which the original writes into vm hashes; we write the same so that
#: a Ruby vmpooler reading our data (or we reading its data) agree.
RUBY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
#: 3000-01-01: a later stored time is read as unreadable, so adding a lifetime to it stays a date
LATEST_EPOCH = 32_503_680_000
#: the longest lifetime a VM can have (ten years) when ``max_lifetime_upper_limit`` sets none: far
#: beyond any use, and small enough that a checkout time plus it is still a date
LIFETIME_CEILING_HOURS = 87_600


def format_time(epoch: float) -> str:
    # every checkout writes the time, many in the same second: strftime was 1.4 % of one's CPU (py-spy)
    global _last_formatted
    second = math.floor(epoch)
    cached = _last_formatted
    if cached[0] != second:
        cached = _last_formatted = (second, datetime.fromtimestamp(second, UTC).strftime(RUBY_TIME_FORMAT))
    return cached[1]


#: (whole second, format_time of it): one entry, replaced as a whole so threads never see half of one
_last_formatted: tuple[float, str] = (math.nan, "")


def parse_time(value: str | None) -> float | None:
    """Epoch seconds from a Ruby ``Time#to_s``, an ISO 8601 string or a number; None when unreadable."""
    if not value:
        return None
    return _parse_time(value)


# a manager pass reads every VM's timestamps again; they never change once written, and strptime
# of 10,000 of them was a third of a steady pass's CPU at 1,000 pools
@lru_cache(maxsize=1 << 16)
def _parse_time(value: str) -> float | None:
    try:
        epoch = float(value)
    except ValueError:
        pass
    else:
        # "nan", "1e300" or a year past 9999 is no time (and could not be written back as a date)
        return epoch if math.isfinite(epoch) and 0 <= epoch < LATEST_EPOCH else None
    for parse in (
        lambda v: datetime.strptime(v, RUBY_TIME_FORMAT),
        lambda v: datetime.strptime(v, "%Y-%m-%d %H:%M:%S.%f %z"),
        datetime.fromisoformat,
    ):
        try:
            moment = parse(value.strip())
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class VMField(StrEnum):
    """Every field of a VM's record, named as the original vmpooler 3.9.1 names it (*ours*: additions)."""

    POOL = "pool"
    TEMPLATE = "template"
    DOMAIN = "domain"
    #: when the clone began
    CLONE = "clone"
    #: ours: the manager whose task clones it (an orphaned pending VM's owner is dead)
    CLONE_OWNER = "clone_owner"
    #: seconds the clone took
    CLONE_TIME = "clone_time"
    CLONE_ERROR = "clone_error"
    CLONE_ERROR_CLASS = "clone_error_class"
    IP = "ip"
    #: the hypervisor host (written by the original's vSphere provider)
    HOST = "host"
    MIGRATED = "migrated"
    READY = "ready"
    #: when it last passed its ready check
    CHECK = "check"
    CHECKOUT = "checkout"
    #: hours from checkout
    LIFETIME = "lifetime"
    #: the token it was checked out with: the original stores the token, we its hash
    TOKEN = "token:token"
    USER = "token:user"
    USER_TAGGED = "user_tagged"
    REQUEST_ID = "request_id"
    POOL_ALIAS = "pool_alias"
    #: disks added, "+8gb:+16gb"
    DISK = "disk"
    DESTROY = "destroy"
    TIMEOUT_NOTIFICATION = "timeout_notification"
    OPEN_SOCKET_ERROR = "open_socket_error"
    #: ours: when it last passed its hand-out check (epoch seconds)
    HANDOUT_PASSED = "handout_passed"
    #: ours: when it failed its hand-out check and was quarantined, and why
    QUARANTINED = "quarantined"
    QUARANTINE_REASON = "quarantine_reason"
    #: ours: the lifetime end (a zset score, as written) a vm.expiring event was sent for (expiring.lua)
    EXPIRY_WARNED = "expiry_warned"


#: ``tag:<name>`` -> the tag's value
TAG_PREFIX = "tag:"
#: ``snapshot:<id>`` -> when it was taken
SNAPSHOT_PREFIX = "snapshot:"


def task_error_field(kind: str) -> str:
    """Ours: the field holding why a VM's last ``kind`` task (snapshot, revert, disk) failed."""
    return f"{kind}_error"


#: an empty mapping every record without tags, snapshots or other fields shares (it cannot change)
_NONE: Mapping[str, str] = MappingProxyType({})


class VMRecord(NamedTuple):
    """A VM's record. A field the hash lacks, or holds a value that cannot be read (a time that is
    no time, a lifetime that is no integer), is None: what a caller does then is its own default.
    Build one with only some fields set to write those (``fields()`` gives only what is set).

    Immutable; a NamedTuple rather than a frozen dataclass, whose ``__init__`` costs five times as
    much: one is built per checkout and per VM the dashboard lists. Build it by keyword."""

    pool: str | None = None
    template: str | None = None
    domain: str | None = None
    clone: float | None = None
    clone_owner: str | None = None
    clone_time: float | None = None
    clone_error: str | None = None
    clone_error_class: str | None = None
    ip: str | None = None
    host: str | None = None
    migrated: str | None = None
    ready: float | None = None
    check: float | None = None
    checkout: float | None = None
    #: hours, within 0..LIFETIME_CEILING_HOURS (0: no limit)
    lifetime: int | None = None
    token: str | None = None
    user: str | None = None
    user_tagged: str | None = None
    request_id: str | None = None
    pool_alias: str | None = None
    disks: tuple[str, ...] = ()
    destroy: float | None = None
    timeout_notification: str | None = None
    open_socket_error: str | None = None
    handout_passed: float | None = None
    quarantined: float | None = None
    quarantine_reason: str | None = None
    #: kept as written: expiring.lua compares it with a zset score as a string
    expiry_warned: str | None = None
    tags: Mapping[str, str] = _NONE
    #: snapshot id -> when it was taken, as stored
    snapshots: Mapping[str, str] = _NONE
    #: fields of no kind above (a task's error, a hand-written field), kept as they are
    other: Mapping[str, str] = _NONE

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> VMRecord:
        """Read an HGETALL (or an HMGET's present fields); never raises on the values."""
        values: dict[str, Any] = {}
        tags: dict[str, str] = {}
        snapshots: dict[str, str] = {}
        other: dict[str, str] = {}
        for name, value in fields.items():
            attribute = _ATTRIBUTE.get(name)
            if attribute is not None:
                values[attribute] = _READERS.get(attribute, _text)(value)
            elif name.startswith(TAG_PREFIX):
                tags[name[len(TAG_PREFIX) :]] = value
            elif name.startswith(SNAPSHOT_PREFIX):
                snapshots[name[len(SNAPSHOT_PREFIX) :]] = value
            else:
                other[name] = value
        return cls(**values, tags=tags or _NONE, snapshots=snapshots or _NONE, other=other or _NONE)

    def fields(self) -> dict[str, str]:
        """The fields that are set, as an HSET writes them (times as the original writes them)."""
        out = {name: write(value) for i, name, write in _WRITE if (value := self[i]) is not None}
        if self.disks:
            out[VMField.DISK.value] = ":".join(self.disks)
        if self.tags:
            out |= {TAG_PREFIX + tag: value for tag, value in self.tags.items()}
        if self.snapshots:
            out |= {SNAPSHOT_PREFIX + snapshot: when for snapshot, when in self.snapshots.items()}
        if self.other:
            out |= self.other
        return out

    def lifetime_hours(self, default: float) -> float:
        """Its lifetime in hours; ``default`` (the configured one) when it has none of its own."""
        return default if self.lifetime is None else self.lifetime

    def lifetime_end(self, default_hours: float) -> float:
        """When its lifetime ends (epoch seconds); never (inf) without a checkout time or a limit."""
        hours = self.lifetime_hours(default_hours)
        if self.checkout is None or hours <= 0:
            return math.inf
        return self.checkout + hours * 3600


def read_lifetime(value: str) -> int | None:
    """Hours as stored; out of range is clamped (a lifetime of 1e20 hours has no end date that
    can be written), anything not an integer is None."""
    try:
        hours = int(value.strip())
    except ValueError:
        return None
    return max(0, min(hours, LIFETIME_CEILING_HOURS))


def _text(value: str) -> str:
    return value


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


#: attribute -> hash field, for every attribute that maps to one field
_FIELD: dict[str, str] = {
    "pool": VMField.POOL,
    "template": VMField.TEMPLATE,
    "domain": VMField.DOMAIN,
    "clone": VMField.CLONE,
    "clone_owner": VMField.CLONE_OWNER,
    "clone_time": VMField.CLONE_TIME,
    "clone_error": VMField.CLONE_ERROR,
    "clone_error_class": VMField.CLONE_ERROR_CLASS,
    "ip": VMField.IP,
    "host": VMField.HOST,
    "migrated": VMField.MIGRATED,
    "ready": VMField.READY,
    "check": VMField.CHECK,
    "checkout": VMField.CHECKOUT,
    "lifetime": VMField.LIFETIME,
    "token": VMField.TOKEN,
    "user": VMField.USER,
    "user_tagged": VMField.USER_TAGGED,
    "request_id": VMField.REQUEST_ID,
    "pool_alias": VMField.POOL_ALIAS,
    "disks": VMField.DISK,
    "destroy": VMField.DESTROY,
    "timeout_notification": VMField.TIMEOUT_NOTIFICATION,
    "open_socket_error": VMField.OPEN_SOCKET_ERROR,
    "handout_passed": VMField.HANDOUT_PASSED,
    "quarantined": VMField.QUARANTINED,
    "quarantine_reason": VMField.QUARANTINE_REASON,
    "expiry_warned": VMField.EXPIRY_WARNED,
}
_FIELD = {attribute: str(name) for attribute, name in _FIELD.items()}  # plain str: as a reply's fields are
_ATTRIBUTE = {name: attribute for attribute, name in _FIELD.items()}
_TIMES = ("clone", "ready", "check", "checkout", "destroy", "quarantined")
_READERS = {
    **dict.fromkeys(_TIMES, parse_time),
    "clone_time": _seconds,
    "handout_passed": _seconds,
    "lifetime": read_lifetime,
    "disks": lambda value: tuple(disk for disk in value.split(":") if disk),
}
_WRITERS: dict[str, Callable[[Any], str]] = {
    **dict.fromkeys(_TIMES, format_time),
    "clone_time": lambda seconds: f"{seconds:.2f}",
    "handout_passed": repr,
}
#: (position, field, how its value is written) for every single-valued attribute: fields() runs on
#: every checkout, so it walks one flat tuple
_WRITE = tuple(
    (VMRecord._fields.index(attribute), name, _WRITERS.get(attribute, str))
    for attribute, name in _FIELD.items()
    if attribute != "disks"
)
