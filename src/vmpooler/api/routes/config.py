"""Run-time configuration routes: pool size, template and clone-target overrides, resets, config views."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from vmpooler.api.deps import Auth, Body
from vmpooler.api.responses import ok
from vmpooler.api.schemas import POOL_VALUES, errors, json_body
from vmpooler.api.services.runtime_config import RuntimeConfig


async def runtime_config(request: Request) -> RuntimeConfig:
    service: RuntimeConfig = request.app.state.runtime_config
    return service


Config = Annotated[RuntimeConfig, Depends(runtime_config)]


def router() -> APIRouter:
    changed_responses = {201: {"description": "Changed"}, **errors(400, 401, 403, 404, 405, 408, 413, 415, 503)}
    routes = APIRouter(tags=["config"], responses=changed_responses)

    async def allowed(request: Request, config: RuntimeConfig, auth: Auth) -> None:
        config.require_enabled()
        config.require_admin(await auth.token(request, required=True))

    def changed(did: bool) -> Response:
        return ok(201 if did else 200)

    @routes.post("/config/poolsize", openapi_extra=json_body(POOL_VALUES))
    async def set_pool_size(request: Request, config: Config, auth: Auth, body: Body) -> Response:
        await allowed(request, config, auth)
        return changed(await config.set_sizes(body))

    @routes.delete("/config/poolsize/{pool}")
    async def reset_pool_size(pool: str, request: Request, config: Config, auth: Auth) -> Response:
        await allowed(request, config, auth)
        did, body = await config.reset_size(pool)
        return ok(201 if did else 200, **body)

    @routes.post("/config/pooltemplate", openapi_extra=json_body(POOL_VALUES))
    async def set_pool_template(request: Request, config: Config, auth: Auth, body: Body) -> Response:
        await allowed(request, config, auth)
        return changed(await config.set_templates(body))

    @routes.delete("/config/pooltemplate/{pool}")
    async def reset_pool_template(pool: str, request: Request, config: Config, auth: Auth) -> Response:
        await allowed(request, config, auth)
        did, body = await config.reset_template(pool)
        return ok(201 if did else 200, **body)

    @routes.post("/config/clonetarget", openapi_extra=json_body(POOL_VALUES))
    async def set_clone_target(request: Request, config: Config, auth: Auth, body: Body) -> Response:
        await allowed(request, config, auth)
        return changed(await config.set_clone_targets(body))

    @routes.post("/poolreset", openapi_extra=json_body(POOL_VALUES))
    async def reset_pools(request: Request, config: Config, auth: Auth, body: Body) -> Response:
        await allowed(request, config, auth)
        await config.reset_pools(body)
        return ok(201)

    @routes.get("/config")
    async def show_config(config: Config) -> Response:
        return ok(pool_configuration=await config.pool_configuration(), status={"ok": True})

    @routes.get("/full_config")
    async def show_full_config(config: Config) -> Response:
        return ok(full_config=config.full_config(), status={"ok": True})

    return routes
