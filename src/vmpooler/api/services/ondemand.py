"""On-demand requests as the API sees them: validate and record a request, report and cancel it."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from vmpooler.api.services.vms import parse_count, weighted_order
from vmpooler.api.shapes import Flavor
from vmpooler.auth.tokens import Identity
from vmpooler.config import Settings
from vmpooler.errors import BadRequest, Conflict, Forbidden, NotFound
from vmpooler.states import VMState
from vmpooler.store.ondemand import Item, decode_items, encode_items
from vmpooler.store.records import VMField, VMRecord, format_time
from vmpooler.store.redis import Store

REQUEST_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # fullmatch: `$` lets "abc\n" through
DELETED_TTL_SECONDS = 1_296_000  # 15 days, as the original keeps a deleted request


class MissingRequest(NotFound):
    """404 with the original's ``message`` key beside ours."""

    def __init__(self, request_id: str) -> None:
        message = f"no request found for request_id '{request_id}'"
        super().__init__(message, message=message)


class OndemandService:
    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._rng = random.Random()

    def _pick_pool(self, requested: str) -> str | None:
        """The pool behind a name or alias; an alias's pool is drawn by ``backend_weight``."""
        pools = [pool.name for pool in self.settings.pools_for(requested)]
        return weighted_order(self.settings, pools, self._rng)[0] if pools else None

    async def create(self, body: Any, owner: Identity | None) -> str:
        if not isinstance(body, dict) or not body:
            raise BadRequest('send a JSON object such as {"centos-7": "2"} (and optionally "request_id")')
        wanted = dict(body)
        request_id = str(wanted.pop("request_id", "") or uuid.uuid4())
        if not REQUEST_ID.fullmatch(request_id):
            raise BadRequest("request_id may hold only letters, digits, '_', '.' and '-' (at most 100)")
        limit = self.settings.config.max_ondemand_instances_per_request
        items: list[Item] = []
        unknown: list[str] = []
        for requested, raw in wanted.items():
            count = parse_count(str(requested), raw)
            if count > limit:
                message = f"requested amount of instances exceeds the maximum {limit}"
                raise Forbidden(message, message=message)
            pool = self._pick_pool(str(requested))
            if pool is None:
                unknown.append(str(requested))
            else:
                items.append((str(requested), pool, count))
        if not items and not unknown:
            raise BadRequest('no VMs requested: send {"<pool>": <count>, ...}')
        if unknown:
            raise NotFound(f"unknown pool or alias: {', '.join(unknown)}", bad_templates=unknown)
        now = self.clock()
        record = {"requested": encode_items(items), "created": format_time(now)}
        if owner is not None:
            # the owner in the fields a VM's record names it by: the provisioner copies them over
            record |= VMRecord(token=owner.token_id, user=owner.user).fields()
        if not await self.store.ondemand.create(request_id, record, now):
            message = f"request_id '{request_id}' has already been created"
            raise Conflict(message, request_id=request_id, message=message)
        return request_id

    async def status(self, request_id: str, flavor: Flavor) -> tuple[int, dict[str, Any]]:
        record = await self.store.ondemand.get(request_id)
        if record is None:
            raise MissingRequest(request_id)
        body: dict[str, Any] = {"request_id": request_id, "ready": False}
        items = decode_items(record.get("requested", ""))
        status = record.get("status", "")
        if status == "deleted":
            return 200, body | {"message": "The request has been deleted"}
        if status == "failed":
            ttl = self.settings.config.ondemand_request_ttl
            message = f"The request failed to provision instances within the configured ondemand_request_ttl '{ttl}'"
            if record.get("failure_reason"):
                message += f" ({record['failure_reason']})"
            return 200, body | {"message": message}
        delivered = await self.store.ondemand.delivered(request_id, items)
        if status == "ready":
            body["ready"] = True
            for (alias, pool, _), names in zip(items, delivered, strict=True):
                config = self.settings.pool(pool)
                domain = self.settings.domain_for(config) if config else None
                hosts = [flavor.hostname(name, domain) for name in names]
                body.setdefault(alias, {"hostname": []})["hostname"] += hosts
            return 200, body
        for (alias, _, count), names in zip(items, delivered, strict=True):
            entry = body.setdefault(alias, {"ready": "0", "pending": "0"})
            entry["ready"] = str(int(entry["ready"]) + len(names))
            entry["pending"] = str(int(entry["pending"]) + count - len(names))
        return 202, body

    async def delete(self, request_id: str, caller: Identity | None) -> str | None:
        """Cancel: its VMs are returned. Returns a message when it was deleted already."""
        record = await self.store.ondemand.get(request_id)
        if record is None:
            raise MissingRequest(request_id)
        owner = record.get(VMField.USER)
        if owner and caller is not None and caller.user != owner and not caller.admin:
            raise Forbidden("this request belongs to another user")
        if record.get("status") == "deleted":
            return "the request has already been deleted"
        items = decode_items(record.get("requested", ""))
        for (_, pool, _), names in zip(items, await self.store.ondemand.delivered(request_id, items), strict=True):
            for name in names:
                await self.store.move(
                    pool, name, VMState.RUNNING, VMState.COMPLETED, reason="on-demand request deleted"
                )
        await self.store.ondemand.forget_vms(request_id, items)
        await self.store.ondemand.close(request_id, "deleted", {}, DELETED_TTL_SECONDS)
        return None
