"""API tokens: issued to a user after basic auth, stored only as a hash, checked on every VM call."""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmpooler.errors import Forbidden, NotFound
from vmpooler.store.records import format_time
from vmpooler.store.tokens import TokenStore

ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token belongs to."""

    user: str
    token_id: str


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """32 characters [a-z0-9], the first a letter other than 'z', as the original makes them."""
    return secrets.choice(ALPHABET[:25]) + "".join(secrets.choice(ALPHABET) for _ in range(31))


def hint(token: str) -> str:
    """What listing shows of a token we can no longer read: enough to tell tokens apart."""
    return f"{token[:6]}…"


class TokenService:
    def __init__(self, store: TokenStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def issue(self, user: str) -> str:
        token = new_token()
        now = format_time(self.clock())
        await self.store.create(token_id(token), {"user": user, "created": now, "hint": hint(token)})
        return token

    async def verify(self, token: str) -> Identity | None:
        """The token's owner (and its ``last`` use is stamped), or None for an unknown token."""
        if not token or len(token) > 128:
            return None
        tid = token_id(token)
        record = await self.store.get(tid) or await self.store.adopt_legacy(token, tid)
        if record is None:
            return None
        await self.store.touch(tid, format_time(self.clock()))
        return Identity(record["user"], tid)

    async def list_for(self, user: str) -> dict[str, dict[str, str]]:
        """The user's tokens, keyed by their hint (the secret itself is not stored)."""
        found = await self.store.of_user(user)
        return {
            record.get("hint") or tid[:8]: {"created": record.get("created", ""), "last": record.get("last", "never")}
            for tid, record in found.items()
        }

    async def describe(self, token: str) -> dict[str, object]:
        """``GET /token/<t>``: owner, times and running VMs; the token in the URL is the credential."""
        tid = token_id(token)
        record = await self.store.get(tid) or await self.store.adopt_legacy(token, tid)
        if record is None:
            raise NotFound("no such token (it may have been deleted)")
        info: dict[str, object] = {"user": record["user"], "created": record.get("created", "")}
        if record.get("last"):
            info["last"] = record["last"]
        info["vms"] = {"running": await self.store.running_vms(tid)}
        return info

    async def revoke(self, token: str, user: str) -> None:
        tid = token_id(token)
        record = await self.store.get(tid) or await self.store.adopt_legacy(token, tid)
        if record is None:
            raise NotFound("no such token (it may have been deleted already)")
        if record["user"] != user:
            raise Forbidden(f"this token belongs to another user than {user!r}")
        await self.store.revoke(tid, user)
