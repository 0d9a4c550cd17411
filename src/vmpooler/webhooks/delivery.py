"""One delivery attempt (a signed POST, bounded in time) and the retry schedule."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import httpx
import orjson

from vmpooler.webhooks.signing import sign

__all__ = ["Attempt", "backoff", "post_event"]

#: no retry waits longer than this, however many attempts came before
BACKOFF_CAP_S = 60.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to: ``status`` 0 when no answer came (refused, timed out)."""

    ok: bool
    status: int
    error: str
    seconds: float


def backoff(attempt: int, base_s: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling from ``base_s``, capped,
    with jitter (half to all of it) so receivers coming back are not hit by every hook at once."""
    ceiling = min(BACKOFF_CAP_S, base_s * float(2 ** (attempt - 1)))
    jitter: float = 0.5 + rng.random() / 2
    return ceiling * jitter


async def post_event(
    http: httpx.AsyncClient, url: str, key: bytes, event: dict[str, object], timeout_s: float
) -> Attempt:
    """POST ``event`` signed; 2xx is success. The whole attempt is bounded by ``timeout_s``, so a receiver
    that trickles its answer byte by byte is cut off as surely as one that never answers."""
    body = orjson.dumps(event)
    message_id = str(event["id"])
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vmpooler-webhooks",
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(stamp),
        "Webhook-Signature": sign(key, message_id, stamp, body),
    }
    started = time.monotonic()
    try:
        # streamed and never read: a receiver's answer body (however large) is of no interest
        async with asyncio.timeout(timeout_s), http.stream("POST", url, content=body, headers=headers) as reply:
            status = reply.status_code
    except TimeoutError:
        return Attempt(False, 0, f"no answer within {timeout_s:g} s", time.monotonic() - started)
    except httpx.HTTPError as exc:
        return Attempt(False, 0, f"{type(exc).__name__}: {exc}"[:300], time.monotonic() - started)
    elapsed = time.monotonic() - started
    if 200 <= status < 300:
        return Attempt(True, status, "", elapsed)
    return Attempt(False, status, f"answered {status}", elapsed)
