"""Request dependencies: the services held by the app, and a tolerant JSON body reader.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool, which cost
two thread hand-offs per checkout (profiled: about a third of the API's throughput).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from vmpooler.api.auth import ApiAuth
from vmpooler.api.services.status import StatusService
from vmpooler.api.services.vms import VMService
from vmpooler.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
#: arrays and objects inside one another; no route reads more than three levels
MAX_BODY_DEPTH = 32


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
        # orjson, not json: no RecursionError on deep nesting, no ValueError on a 5,000-digit
        # integer (it becomes a float, which no count accepts), and a lone surrogate is refused here
        # rather than failing later where the text is encoded
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f'Invalid JSON: {exc}; send a JSON object such as {{"centos-7": 1}}') from exc
    if _depth(body) > MAX_BODY_DEPTH:
        raise BadRequest(f"Invalid JSON: nested deeper than {MAX_BODY_DEPTH} levels; send a flat JSON object")
    return body


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 0)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            level.extend((child, depth + 1) for child in item)
    return deepest


VMs = Annotated[VMService, Depends(vm_service)]
Status = Annotated[StatusService, Depends(status_service)]
Body = Annotated[Any, Depends(json_body)]
Auth = Annotated[ApiAuth, Depends(api_auth)]
