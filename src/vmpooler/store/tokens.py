"""Token records in Redis: created, looked up, touched, listed per user, revoked."""

from __future__ import annotations

from vmpooler.states import VMState
from vmpooler.store import keys, scripts
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import EventLog, at_field, event_data, queue_event
from vmpooler.store.legacy_tokens import LegacyTokenStore
from vmpooler.store.records import VMField
from vmpooler.store.replies import str_dict


class TokenStore:
    """Tokens are keyed by an id (the token's SHA-256), never by the secret itself. Creating and revoking
    one writes ``token.created`` / ``token.revoked`` (owner: its user; data: its hint, never the token)."""

    def __init__(self, client: Redis, eventlog: EventLog) -> None:
        self.client = client
        self.eventlog = eventlog
        self._revoke = scripts.load(client, "token_revoke")
        #: the original's clear-text records, while both services may share the Redis
        self.legacy = LegacyTokenStore(client)

    async def create(self, token_id: str, record: dict[str, str]) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.token(token_id), mapping=record)  # type: ignore[arg-type]
            pipe.sadd(keys.user_tokens(record["user"]), token_id)
            queue_event(
                pipe,
                self.eventlog.max_length,
                "token.created",
                owner=record["user"],
                data=event_data(hint=record.get("hint")),
            )
            await pipe.execute()

    async def get(self, token_id: str) -> dict[str, str] | None:
        async with translated():
            record = str_dict(await self.client.hgetall(keys.token(token_id)))
        return record or None

    async def touch(self, token_id: str, when: str) -> None:
        async with translated():
            await self.client.hset(keys.token(token_id), "last", when)

    async def of_user(self, user: str) -> dict[str, dict[str, str]]:
        async with translated():
            ids = sorted(str(i) for i in await self.client.smembers(keys.user_tokens(user)))
            async with self.client.pipeline(transaction=False) as pipe:
                for token_id in ids:
                    pipe.hgetall(keys.token(token_id))
                records = [str_dict(r) for r in await pipe.execute()]
        return {token_id: record for token_id, record in zip(ids, records, strict=True) if record}

    async def revoke(
        self, token_id: str, user: str, original_token: str | None = None, *, reason: str = "revoked"
    ) -> bool:
        """Delete the token; with ``original_token``, the original's clear-text record of it too (in the
        same step), so the original stops accepting it as well. False when it was gone already."""
        script_keys = [keys.token(token_id), keys.user_tokens(user), keys.token_vms(token_id), keys.EVENT_STREAM]
        if original_token is not None:
            script_keys.append(keys.token(original_token))
        async with translated():
            done = await self._revoke(
                keys=script_keys, args=[token_id, user, at_field(), reason, self.eventlog.max_length]
            )
        return bool(done)

    async def running_vms(self, token_id: str) -> list[str]:
        """The token's VMs still checked out; the rest are pruned from its index as they are found."""
        async with translated():
            names = sorted(str(n) for n in await self.client.smembers(keys.token_vms(token_id)))
            if not names:
                return []
            async with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hget(keys.vm(name), VMField.POOL)
                pools = await pipe.execute()
            async with self.client.pipeline(transaction=False) as pipe:
                for name, pool in zip(names, pools, strict=True):
                    pipe.sismember(keys.state_set(VMState.RUNNING, str(pool)), name)
                running = await pipe.execute()
            gone = [n for n, (p, r) in zip(names, zip(pools, running, strict=True), strict=True) if not (p and r)]
            if gone:
                await self.client.srem(keys.token_vms(token_id), *gone)
        return [n for n in names if n not in gone]
