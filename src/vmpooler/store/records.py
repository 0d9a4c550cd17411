"""How VM records are written into Redis hashes: times in the original's format, parsed back either way."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache

#: Ruby's ``Time#to_s``, which the original writes into vm hashes; we write the same so that
#: a Ruby vmpooler reading our data (or we reading its data) agree.
RUBY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
#: 3000-01-01: a later stored time is read as unreadable, so adding a lifetime to it stays a date
LATEST_EPOCH = 32_503_680_000


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(RUBY_TIME_FORMAT)


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
