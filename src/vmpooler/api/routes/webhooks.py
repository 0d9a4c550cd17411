"""Webhook routes (v3 only, admins): ``GET /webhooks`` and ``POST /webhooks/<name>/redeliver/<id>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from vmpooler.api.deps import Auth
from vmpooler.api.responses import ok
from vmpooler.api.schemas import errors
from vmpooler.api.services.webhooks import WebhookService


async def webhook_service(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks
    return service


Webhooks = Annotated[WebhookService, Depends(webhook_service)]


def router() -> APIRouter:
    routes = APIRouter(tags=["webhooks"], responses=errors(401, 403, 503))

    @routes.get("/webhooks")
    async def overview(request: Request, service: Webhooks, auth: Auth) -> Response:
        """Each hook: its filter, counters, pending deliveries, recent attempts and dead letters."""
        service.require_admin(await auth.token(request, required=True))
        return ok(webhooks=await service.overview())

    @routes.post("/webhooks/{name}/redeliver/{event_id}", responses=errors(404))
    async def redeliver(name: str, event_id: str, request: Request, service: Webhooks, auth: Auth) -> Response:
        """Send an event (a dead letter, or one still in the stream) to the hook again."""
        service.require_admin(await auth.token(request, required=True))
        event = await service.redeliver(name, event_id)
        return ok(202, queued=event["id"])

    return routes
