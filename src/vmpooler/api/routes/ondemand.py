"""On-demand routes: ask for VMs that are cloned for you, poll the request, cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from vmpooler.api.deps import Auth, Body
from vmpooler.api.responses import ok
from vmpooler.api.schemas import ONDEMAND_BODY, errors, json_body
from vmpooler.api.services.ondemand import OndemandService
from vmpooler.api.services.vms import parse_spec
from vmpooler.api.shapes import Flavor


async def ondemand_service(request: Request) -> OndemandService:
    service: OndemandService = request.app.state.ondemand
    return service


Ondemand = Annotated[OndemandService, Depends(ondemand_service)]


def router(flavor: Flavor) -> APIRouter:
    routes = APIRouter(
        tags=[f"ondemand ({flavor.name})"], responses=errors(400, 401, 403, 404, 408, 409, 413, 415, 503)
    )

    @routes.post("/ondemandvm", status_code=201, openapi_extra=json_body(ONDEMAND_BODY))
    async def create(request: Request, service: Ondemand, auth: Auth, body: Body) -> Response:
        owner = await auth.token(request, required=True)
        return ok(201, request_id=await service.create(body, owner))

    @routes.post("/ondemandvm/{spec}", status_code=201)
    async def create_by_url(spec: str, request: Request, service: Ondemand, auth: Auth) -> Response:
        owner = await auth.token(request, required=True)
        return ok(201, request_id=await service.create(parse_spec(spec, "/ondemandvm"), owner))

    @routes.get("/ondemandvm/{request_id}", responses={202: {"description": "Still being provisioned"}})
    async def status(request_id: str, service: Ondemand) -> Response:
        code, body = await service.status(request_id, flavor)
        return ok(code, **body)

    @routes.delete("/ondemandvm/{request_id}")
    async def delete(request_id: str, request: Request, service: Ondemand, auth: Auth) -> Response:
        message = await service.delete(request_id, await auth.token(request, required=True))
        return ok(200, **({"message": message} if message else {}))

    return routes
