"""Token routes: create and list with basic auth, query by token, delete your own."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from vmpooler.api.deps import Auth
from vmpooler.api.responses import ok
from vmpooler.api.schemas import errors
from vmpooler.errors import NotFound


def router() -> APIRouter:
    routes = APIRouter(tags=["tokens"], responses=errors(400, 401, 403, 404, 503))

    @routes.get("/token")
    async def list_tokens(request: Request, auth: Auth) -> Response:
        user = await auth.basic_user(request)
        tokens = await auth.tokens.list_for(user)
        if not tokens:
            raise NotFound(f"{user!r} has no tokens; POST /token creates one")
        return ok(**tokens)

    @routes.post("/token")
    async def create_token(request: Request, auth: Auth) -> Response:
        user = await auth.basic_user(request)
        return ok(token=await auth.tokens.issue(user))

    @routes.get("/token/{token}")
    async def token_info(token: str, auth: Auth) -> Response:
        auth.require_enabled()
        return ok(**{token: await auth.tokens.describe(token)})

    @routes.delete("/token/{token}")
    async def delete_token(token: str, request: Request, auth: Auth) -> Response:
        user = await auth.basic_user(request)
        await auth.tokens.revoke(token, user)
        return ok()

    return routes
