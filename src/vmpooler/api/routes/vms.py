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
from vmpooler.api.services.waiting import WAIT_NOTE, WAITED_HEADER, wait_budget
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

    async def check_out(request: Request, vms: VMs, auth: Auth, wanted: dict[str, int]) -> Response:
        # ?wait= or Prefer: wait= (docs/waiting.md); without either, exactly the checkout there always was
        wait, from_prefer = wait_budget(request.query_params.get("wait"), request.headers.get("prefer"))
        caller = await auth.token(request, required=False)
        taken, waited = await vms.checkout_waiting(wanted, caller, wait, request.is_disconnected)
        log.info("checkout %s", ", ".join(f"{t.requested}={t.hostname}" for t in taken))
        note(request, vm=",".join(t.hostname for t in taken), pool=",".join(sorted({t.pool for t in taken})))
        if wait <= 0:
            return ok(**flavor.checkout_body(taken, vms.domain_of))
        reply = ok(**flavor.checkout_body(taken, vms.domain_of), waited=round(waited, 3))
        reply.headers[WAITED_HEADER] = f"{waited:.3f}"
        if from_prefer:
            reply.headers["Preference-Applied"] = f"wait={wait:g}"
        return reply

    # `?wait=` is described in the route's text, not as a parameter: a fuzzer trying wait=600 would hold
    # one request for ten minutes per example
    @routes.post("/vm", openapi_extra=json_body(CHECKOUT_BODY), description=WAIT_NOTE)
    async def checkout_batch(request: Request, vms: VMs, auth: Auth, body: Body) -> Response:
        return await check_out(request, vms, auth, checkout_request(body))

    @routes.post("/vm/{spec}", description=WAIT_NOTE)
    async def checkout_by_url(spec: str, request: Request, vms: VMs, auth: Auth) -> Response:
        # the body is ignored: the seed README's `curl -d --url .../vm/<pool>` posts "--url" as data
        return await check_out(request, vms, auth, parse_spec(spec, "/vm"))

    @routes.get("/vm/{pool}/queue")
    async def queue(pool: str, request: Request, vms: VMs, auth: Auth) -> Response:
        caller = await auth.token(request, required=False)
        return ok(**await vms.waiting.queue(vms.settings, pool, caller.user if caller else None))

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
