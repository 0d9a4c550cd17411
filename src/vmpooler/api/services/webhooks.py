"""What the webhook routes do: each hook's status, recent deliveries and dead letters; redelivery on request."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from vmpooler.auth.tokens import Identity
from vmpooler.config import Settings
from vmpooler.config.webhooks import WebhookSettings
from vmpooler.errors import Forbidden, NotFound
from vmpooler.store.webhooks import WebhookStore

__all__ = ["WebhookService"]

STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


class WebhookService:
    def __init__(self, settings: Settings, store: WebhookStore, *, auth_enabled: bool) -> None:
        self.hooks = {hook.name: hook for hook in settings.webhooks}
        self.store = store
        self.auth_enabled = auth_enabled

    def require_admin(self, caller: Identity | None) -> None:
        """Deliveries show every owner's events: with ``:auth:``, admins only (without it, anyone, as every route)."""
        if self.auth_enabled and (caller is None or not caller.admin):
            raise Forbidden("the webhook deliveries are for admins: use an admin's token (see :auth: admins)")

    async def overview(self) -> dict[str, Any]:
        return {name: {**_described(hook), **await self.store.status(name)} for name, hook in self.hooks.items()}

    async def redeliver(self, name: str, event_id: str) -> dict[str, Any]:
        if name not in self.hooks:
            raise NotFound(f"no webhook named {name!r}; GET /api/v3/webhooks lists them")
        # a stream id exactly: XRANGE would read "+" or "-" as the stream's ends
        event = await self.store.event(name, event_id) if STREAM_ID.fullmatch(event_id) else None
        if event is None:
            raise NotFound(
                f"event {event_id!r} is neither a dead letter of {name!r} nor in the event stream (it may be trimmed)"
            )
        await self.store.queue_redelivery(name, event)
        return event


def _described(hook: WebhookSettings) -> dict[str, Any]:
    # the URL without its query or user info: either may hold a receiver's credential
    parts = urlsplit(hook.url)
    return {
        "url": f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}",
        "events": hook.events or ["*"],
        "pools": hook.pools,
        "max_attempts": hook.max_attempts,
        "concurrency": hook.concurrency,
    }
