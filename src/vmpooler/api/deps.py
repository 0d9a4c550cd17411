"""Request dependencies: the services held by the app, and a tolerant JSON body reader.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool, which cost
two thread hand-offs per checkout (profiled: about a third of the API's throughput).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request

from vmpooler.api.auth import ApiAuth
from vmpooler.api.service import VMService
from vmpooler.api.status import StatusService
from vmpooler.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024


async def vm_service(request: Request) -> VMService:
    service: VMService = request.app.state.vms
    return service


async def api_auth(request: Request) -> ApiAuth:
    auth: ApiAuth = request.app.state.auth
    return auth


async def status_service(request: Request) -> StatusService:
    service: StatusService = request.app.state.status
    return service


async def json_body(request: Request) -> Any:
    """The body as JSON whatever its Content-Type (``curl -d`` sends form encoding); None when empty."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES // 1024} KiB; send less")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f'Invalid JSON: {exc}; send a JSON object such as {{"centos-7": 1}}') from exc


VMs = Annotated[VMService, Depends(vm_service)]
Status = Annotated[StatusService, Depends(status_service)]
Body = Annotated[Any, Depends(json_body)]
Auth = Annotated[ApiAuth, Depends(api_auth)]
