"""API tokens: issued to a user after basic auth, stored only as a hash, checked on every VM call, expirable."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmpooler.auth.policy import AuthPolicy
from vmpooler.errors import Forbidden, NotFound, Unauthorized
from vmpooler.store.legacy_tokens import LEGACY_FIELD
from vmpooler.store.records import format_time, parse_time
from vmpooler.store.tokens import TokenStore

ALPHABET = string.ascii_lowercase + string.digits
#: the token record's field holding the admin group's answer at creation ("1" when in it)
ADMIN_FIELD = "admin"
_TOKEN_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token (or basic-auth login) belongs to, and whether they may act on everyone's VMs."""

    user: str
    token_id: str
    admin: bool = False


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def may_be_original(token: str) -> bool:
    """Whether ``token`` could be one the original issued: never something shaped like our token ids
    (a SHA-256 in hex), so a stored hash read out of Redis cannot be replayed as a clear token."""
    return _TOKEN_ID.fullmatch(token) is None


def new_token() -> str:
    """32 characters [a-z0-9], the first a letter other than 'z', as the original makes them."""
    return secrets.choice(ALPHABET[:25]) + "".join(secrets.choice(ALPHABET) for _ in range(31))


def hint(token: str) -> str:
    """What listing shows of a token we can no longer read: enough to tell tokens apart."""
    return f"{token[:6]}…"


class TokenExpired(Unauthorized):
    """A token past its ``token_lifetime``; it is deleted when this is raised."""

    def __init__(self, expired_at: float) -> None:
        super().__init__(f"token expired on {format_time(expired_at)}; create a new one with POST /api/v3/token")


class TokenService:
    def __init__(
        self, store: TokenStore, clock: Callable[[], float] = time.time, policy: AuthPolicy | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or AuthPolicy()

    async def issue(self, user: str, in_admin_group: bool = False) -> str:
        token = new_token()
        record = {"user": user, "created": format_time(self.clock()), "hint": hint(token)}
        if in_admin_group:
            record[ADMIN_FIELD] = "1"
        await self.store.create(token_id(token), record)
        return token

    async def verify(self, token: str) -> Identity | None:
        """The token's owner (and its ``last`` use is stamped), or None for an unknown token; raises
        TokenExpired (and deletes the token) for one past its lifetime."""
        if not token or len(token) > 128:
            return None
        tid = token_id(token)
        record = await self._live_record(token, tid)
        if record is None:
            return None
        when = format_time(self.clock())
        await self.store.touch(tid, when)
        if record.get(LEGACY_FIELD):
            await self.store.legacy.touch(token, when)
        return Identity(record["user"], tid, self.admin(record))

    def admin(self, record: dict[str, str]) -> bool:
        return record.get(ADMIN_FIELD) == "1" or self.policy.is_admin(record["user"])

    def expires_at(self, record: dict[str, str]) -> float | None:
        """When the token stops working, or None when tokens do not expire. A token whose creation
        time cannot be read (a hand-made record) counts as made at the epoch: expired, not eternal."""
        lifetime = self.policy.token_lifetime_seconds
        if lifetime is None:
            return None
        return (parse_time(record.get("created")) or 0.0) + lifetime

    async def _live_record(self, token: str, tid: str) -> dict[str, str] | None:
        """The record of the clear ``token``: ours under its hash, or the original's (see
        vmpooler.store.legacy_tokens). Only ever looked up by the hash of what the caller sent, so a
        value read from Redis (a stored hash, a VM's ``token:token``) is never itself a credential."""
        record = await self._record(token, tid)
        if record is None:
            return None
        expires = self.expires_at(record)
        if expires is not None and self.clock() >= expires:
            await self.store.revoke(tid, record["user"], reason="expired")
            raise TokenExpired(expires)
        return record

    async def _record(self, token: str, tid: str) -> dict[str, str] | None:
        record = await self.store.get(tid)
        if record is not None and record.get(LEGACY_FIELD):
            if await self.store.legacy.original_record(token) is None:
                # the original deleted its record (its DELETE /token): the token is revoked here too
                await self.store.revoke(tid, record["user"], reason="revoked by the original vmpooler")
                return None
            return record
        if record is not None or not may_be_original(token):
            return record
        return await self.store.legacy.adopt(token, tid, hint(token))

    def _expiry_text(self, record: dict[str, str]) -> str:
        expires = self.expires_at(record)
        return "never" if expires is None else format_time(expires)

    async def list_for(self, user: str) -> dict[str, dict[str, str]]:
        """The user's live tokens, keyed by their hint (the secret itself is not stored); expired ones are deleted."""
        found = await self.store.of_user(user)
        listed: dict[str, dict[str, str]] = {}
        now = self.clock()
        for tid, record in found.items():
            expires = self.expires_at(record)
            if expires is not None and now >= expires:
                await self.store.revoke(tid, user, reason="expired")
                continue
            listed[record.get("hint") or tid[:8]] = {
                "created": record.get("created", ""),
                "last": record.get("last", "never"),
                "expires": self._expiry_text(record),
            }
        return listed

    async def describe(self, token: str) -> dict[str, object]:
        """``GET /token/<t>``: owner, times and running VMs; the token in the URL is the credential."""
        tid = token_id(token)
        record = await self._live_record(token, tid)
        if record is None:
            raise NotFound("no such token (it may have been deleted)")
        info: dict[str, object] = {"user": record["user"], "created": record.get("created", "")}
        if record.get("last"):
            info["last"] = record["last"]
        info["expires"] = self._expiry_text(record)
        running = await self.store.running_vms(tid)
        if record.get(LEGACY_FIELD):
            running = sorted({*running, *await self.store.legacy.checked_out_with(token)})
        info["vms"] = {"running": running}
        return info

    async def revoke(self, token: str, user: str, *, admin: bool = False) -> None:
        """Deletes the token when it is ``user``'s own, or any token for an admin (to cut off a leaked one)."""
        tid = token_id(token)
        record = await self._record(token, tid)
        if record is None:
            raise NotFound("no such token (it may have been deleted already)")
        if record["user"] != user and not admin:
            raise Forbidden(f"this token belongs to another user than {user!r}")
        # an adopted token of the original: its clear record goes too (_record checked it is the original's)
        await self.store.revoke(tid, record["user"], token if record.get(LEGACY_FIELD) else None)

    async def finalize_original_tokens(self) -> dict[str, list[str]]:
        """``vmpooler migrate-from-ruby --finalize``: every token the original stored in clear is stored
        only hashed from now on (the original can no longer use it); returns hint -> VMs moved over."""
        done: dict[str, list[str]] = {}
        for token in await self.store.legacy.clear_tokens():
            if may_be_original(token):
                done[hint(token)] = await self.store.legacy.finalize(token, token_id(token), hint(token))
        return done
