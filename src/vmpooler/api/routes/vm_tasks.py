"""Routes that queue work on a checked-out VM for the manager: snapshot, revert, add a disk (202)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from vmpooler.api.deps import Auth, VMs
from vmpooler.api.responses import ok
from vmpooler.api.schemas import errors


def router() -> APIRouter:
    routes = APIRouter(tags=["VM operations"], responses=errors(400, 401, 403, 404, 503))

    @routes.post("/vm/{hostname}/snapshot", status_code=202)
    async def snapshot(hostname: str, request: Request, vms: VMs, auth: Auth) -> Response:
        snapshot_id = await vms.queue_snapshot(hostname, await auth.token(request, required=True))
        return ok(202, **{hostname.split(".", 1)[0]: {"snapshot": snapshot_id}})

    @routes.post("/vm/{hostname}/snapshot/{snapshot_id}", status_code=202)
    async def revert(hostname: str, snapshot_id: str, request: Request, vms: VMs, auth: Auth) -> Response:
        await vms.queue_revert(hostname, snapshot_id, await auth.token(request, required=True))
        return ok(202)

    @routes.post("/vm/{hostname}/disk/{size}", status_code=202)
    async def add_disk(hostname: str, size: str, request: Request, vms: VMs, auth: Auth) -> Response:
        disk = await vms.queue_disk(hostname, size, await auth.token(request, required=True))
        return ok(202, **{hostname.split(".", 1)[0]: {"disk": disk}})

    return routes
