"""Tokens the original (Ruby) vmpooler stored in clear, kept usable by both services until finalized.

The original keys a token's record by the token itself (``vmpooler__token__<t>``: user, created, last)
and marks the VMs checked out with it by ``token:token = <t>``. While both services may run on one Redis
(a migration, or a rollback), the clear record stays where the original reads it: on first use here a
copy is kept under the token's hash, marked ``legacy``, valid only while the clear record exists (so a
token the original deletes stops working here too). ``vmpooler migrate-from-ruby --finalize`` ends the
transition: every clear record becomes an ordinary hashed one and is deleted, and the VMs it holds are
indexed under the hash.

A value read out of Redis is never a credential: a record is the original's only when nothing of ours
marks it (our records carry a ``hint`` and are indexed by user), so a token's hash, sent as a token,
never finds ours through this path.
"""

from __future__ import annotations

from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.records import VMField
from vmpooler.store.replies import str_dict
from vmpooler.store.scripts import load

#: on a hashed record: a copy of the original's clear record, which must still exist for the copy to count
LEGACY_FIELD = "legacy"
#: on a hashed record: what listing shows of the token; every record of ours has it, the original's never
HINT_FIELD = "hint"
#: the VM record's field the original writes the token into at a checkout with it
VM_TOKEN_FIELD = VMField.TOKEN


class LegacyTokenStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._finalize = load(client, "finalize_token")

    async def original_record(self, clear_token: str) -> dict[str, str] | None:
        """The record the original wrote under ``clear_token``, or None (none, or one of ours)."""
        async with translated():
            record = str_dict(await self.client.hgetall(keys.token(clear_token)))
            user = record.get("user")
            if not user or HINT_FIELD in record or LEGACY_FIELD in record:
                return None
            if await self.client.sismember(keys.user_tokens(user), clear_token):
                return None  # indexed by user: a hashed record of ours, whatever its fields say
        return record

    async def adopt(self, clear_token: str, token_id: str, hint: str) -> dict[str, str] | None:
        """Copy the original's record under the token's hash (marked legacy); the clear one stays."""
        record = await self.original_record(clear_token)
        if record is None:
            return None
        copy = {**record, HINT_FIELD: hint, LEGACY_FIELD: "1"}
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.token(token_id), mapping=copy)  # type: ignore[arg-type]
            pipe.sadd(keys.user_tokens(record["user"]), token_id)
            await pipe.execute()
        return copy

    async def touch(self, clear_token: str, when: str) -> None:
        """Stamp ``last`` on the clear record too, as the original does on every use."""
        async with translated():
            if await self.client.exists(keys.token(clear_token)):
                await self.client.hset(keys.token(clear_token), "last", when)

    async def checked_out_with(self, clear_token: str) -> list[str]:
        """Running VMs the original checked out with ``clear_token`` (its ``token:token`` field); the
        original finds them by this same scan of every pool's running set."""
        async with translated():
            pools = sorted(str(p) for p in await self.client.smembers(keys.POOLS))
            async with self.client.pipeline(transaction=False) as pipe:
                for pool in pools:
                    pipe.smembers(keys.state_set(VMState.RUNNING, pool))
                running = sorted({str(n) for members in await pipe.execute() for n in members})
            async with self.client.pipeline(transaction=False) as pipe:
                for name in running:
                    pipe.hget(keys.vm(name), VM_TOKEN_FIELD)
                holders = await pipe.execute()
        return [name for name, holder in zip(running, holders, strict=True) if holder == clear_token]

    async def clear_tokens(self) -> list[str]:
        """Every token the original stored in clear (SCAN: Redis keeps serving while it runs)."""
        prefix = keys.token("")
        async with translated():
            found = [str(key).removeprefix(prefix) async for key in self.client.scan_iter(match=f"{prefix}*")]
        return sorted([token for token in found if await self.original_record(token) is not None])

    async def finalize(self, clear_token: str, token_id: str, hint: str) -> list[str]:
        """End the transition for one token, atomically: the hashed record becomes an ordinary one, the
        original's VMs are indexed under it (``token:token`` rewritten to the hash) and the clear record
        is deleted. Returns the VMs moved over."""
        record = await self.original_record(clear_token)
        if record is None:
            return []
        held = await self.checked_out_with(clear_token)
        script_keys = [
            keys.token(clear_token),
            keys.token(token_id),
            keys.user_tokens(record["user"]),
            keys.token_vms(token_id),
            *[keys.vm(name) for name in held],
        ]
        async with translated():
            await self._finalize(keys=script_keys, args=[token_id, clear_token, hint, *held])
        return held
