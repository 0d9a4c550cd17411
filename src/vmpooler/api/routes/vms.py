"""The VM routes (list pools, check out, query, modify, return), built once per API version."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from vmpooler.api.audit_notes import note
from vmpooler.api.deps import Auth, Body, VMs
from vmpooler.api.responses import PrettyJSONResponse, ok
from vmpooler.api.schemas import CHECKOUT_BODY, MODIFY_BODY, errors, json_body
from vmpooler.api.services.vms import parse_count, parse_spec
from vmpooler.api.shapes import Flavor
from vmpooler.errors import BadRequest

log = logging.getLogger("vmpooler.api")


def checkout_request(body: Any) -> dict[str, int]:
    """``{"<pool or alias>": count, ...}`` with each count 1..100 (given as a number or a string)."""
    if body is None:
        raise BadRequest('request body is empty: send a JSON object such as {"centos-7": 2}')
    if not isinstance(body, dict):
        raise BadRequest('Request body must be a JSON object such as {"centos-7": 2}')
    return {str(pool): parse_count(str(pool), count) for pool, count in body.items()}


def router(flavor: Flavor) -> APIRouter:
    routes = APIRouter(tags=[f"VMs ({flavor.name})"], responses=errors(400, 401, 403, 404, 408, 413, 415, 503))

    @routes.get("/vm")
    async def list_pools(vms: VMs) -> Response:
        return PrettyJSONResponse(vms.pool_names())

    @routes.post("/vm", openapi_extra=json_body(CHECKOUT_BODY))
    async def checkout_batch(request: Request, vms: VMs, auth: Auth, body: Body) -> Response:
        wanted = checkout_request(body)
        taken = await vms.checkout(wanted, await auth.token(request, required=False))
        log.info("checkout %s", ", ".join(f"{t.requested}={t.hostname}" for t in taken))
        note(request, vm=",".join(t.hostname for t in taken), pool=",".join(sorted({t.pool for t in taken})))
        return ok(**flavor.checkout_body(taken, vms.domain_of))

    @routes.post("/vm/{spec}")
    async def checkout_by_url(spec: str, request: Request, vms: VMs, auth: Auth) -> Response:
        # the body is ignored: the seed README's `curl -d --url .../vm/<pool>` posts "--url" as data
        taken = await vms.checkout(parse_spec(spec, "/vm"), await auth.token(request, required=False))
        log.info("checkout %s", ", ".join(f"{t.requested}={t.hostname}" for t in taken))
        note(request, vm=",".join(t.hostname for t in taken), pool=",".join(sorted({t.pool for t in taken})))
        return ok(**flavor.checkout_body(taken, vms.domain_of))

    @routes.get("/vm/{hostname}")
    async def query(hostname: str, vms: VMs) -> Response:
        return ok(**flavor.vm_body(await vms.view(hostname)))

    @routes.put("/vm/{hostname}", openapi_extra=json_body(MODIFY_BODY))
    async def modify(hostname: str, request: Request, vms: VMs, auth: Auth, body: Body) -> Response:
        await vms.modify(hostname, body, await auth.token(request, required=False))
        return ok()

    @routes.delete("/vm/{hostname}")
    async def give_back(hostname: str, request: Request, vms: VMs, auth: Auth) -> Response:
        await vms.give_back(hostname, await auth.token(request, required=False))
        log.info("returned %s", hostname)
        return ok()

    return routes
