"""What autoscaled pools' managers learned, one JSON string per pool, so a restart keeps the profile."""

from __future__ import annotations

import json
import logging
from typing import Any

from vmpooler.sizing import Profile, Refill, SlotFigures
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import DEFAULT_MAX_LENGTH, event_data, queue_event

log = logging.getLogger("vmpooler.store")


def dump_profile(profile: Profile) -> str:
    return json.dumps(
        {
            "slots": {str(s): [f.mean_per_minute, f.peak_burst, f.weeks] for s, f in profile.slots.items()},
            "refill": [profile.refill.mean_s, profile.refill.sd_s, profile.refill.samples],
            "hour": [profile.hour, profile.hour_total, profile.hour_peak],
            "learned_through": profile.learned_through,
            "last_minute": profile.last_minute,
            "folded": [profile.folded_hour, profile.folded_peak],
        },
        separators=(",", ":"),
    )


def load_profile(text: str) -> Profile:
    """The stored profile; a malformed one (by hand, by another version) raises ValueError."""
    try:
        raw: Any = json.loads(text)
        hour, hour_total, hour_peak = raw["hour"]
        folded = raw.get("folded") or [None, 0]
        return Profile(
            slots={int(s): SlotFigures(float(m), float(p), int(w)) for s, (m, p, w) in raw["slots"].items()},
            refill=Refill(float(raw["refill"][0]), float(raw["refill"][1]), int(raw["refill"][2])),
            hour=None if hour is None else int(hour),
            hour_total=int(hour_total),
            hour_peak=int(hour_peak),
            learned_through=int(raw["learned_through"]),
            last_minute=int(raw.get("last_minute", 0)),
            folded_hour=None if folded[0] is None else int(folded[0]),
            folded_peak=int(folded[1]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an autoscale profile: {exc}") from exc


class AutoscaleStore:
    def __init__(self, client: Redis, events_max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.client = client
        self.events_max_length = events_max_length

    async def load(self, pool: str) -> Profile:
        """The pool's profile, or a fresh one when none (or an unreadable one) is stored."""
        async with translated():
            text = await self.client.get(keys.autoscale_profile(pool))
        if text is None:
            return Profile()
        try:
            return load_profile(str(text))
        except ValueError as exc:
            log.warning("pool %s: stored autoscale profile ignored, learning afresh: %s", pool, exc)
            return Profile()

    async def publish(self, pool: str, decision: dict[str, Any]) -> None:
        """The manager's latest decision for /status (target, reason, when, idle VM-seconds per checkout),
        and its ``pool.resized`` event, written together."""
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.AUTOSCALE_DECISIONS, pool, json.dumps(decision, separators=(",", ":")))
            data = event_data(source="autoscale", size=decision.get("target"), reason=decision.get("reason"))
            queue_event(pipe, self.events_max_length, "pool.resized", pool=pool, data=data, at=decision.get("at"))
            await pipe.execute()

    async def decisions(self) -> dict[str, dict[str, Any]]:
        """Every pool's latest decision; one unreadable (by hand, another version) is left out."""
        async with translated():
            stored = await self.client.hgetall(keys.AUTOSCALE_DECISIONS)
        out = {}
        for pool, text in stored.items():
            try:
                decision = json.loads(str(text))
            except ValueError:
                continue
            if isinstance(decision, dict):
                out[str(pool)] = decision
        return out

    async def save(self, pool: str, profile: Profile) -> None:
        async with translated():
            await self.client.set(keys.autoscale_profile(pool), dump_profile(profile))
