"""The Standard Webhooks signature: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = ["TOLERANCE_S", "sign", "verify"]

#: a receiver refuses a delivery whose timestamp is further than this from its clock (replays)
TOLERANCE_S = 300


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header value for one delivery attempt."""
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """Whether a delivery's headers carry a valid, recent signature of ``body`` (what a receiver checks)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    if not message_id or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_S:
        return False
    expected = sign(key, message_id, int(stamp), body)
    return any(hmac.compare_digest(expected, given) for given in lowered.get("webhook-signature", "").split())
