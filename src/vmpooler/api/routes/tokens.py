"""Token routes: create and list with basic auth, query by token, delete your own (an admin: anyone's)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from vmpooler.api.deps import Auth
from vmpooler.api.responses import ok
from vmpooler.api.schemas import errors
from vmpooler.errors import Forbidden, NotFound


def router() -> APIRouter:
    routes = APIRouter(tags=["tokens"], responses=errors(400, 401, 403, 404, 503))

    @routes.get("/token")
    async def list_tokens(request: Request, auth: Auth) -> Response:
        # an admin may add ?user=<name> to see another user's tokens
        login = await auth.basic_login(request)
        user = request.query_params.get("user") or login.user
        if user != login.user and not auth.is_admin(login):
            raise Forbidden("only an admin may list another user's tokens")
        tokens = await auth.tokens.list_for(user)
        if not tokens:
            raise NotFound(f"{user!r} has no tokens; POST /token creates one")
        return ok(**tokens)

    @routes.post("/token")
    async def create_token(request: Request, auth: Auth) -> Response:
        login = await auth.basic_login(request)
        return ok(token=await auth.tokens.issue(login.user, login.in_admin_group))

    @routes.get("/token/{token}")
    async def token_info(token: str, auth: Auth) -> Response:
        auth.require_enabled()
        return ok(**{token: await auth.tokens.describe(token)})

    @routes.delete("/token/{token}")
    async def delete_token(token: str, request: Request, auth: Auth) -> Response:
        login = await auth.basic_login(request)
        await auth.tokens.revoke(token, login.user, admin=auth.is_admin(login))
        return ok()

    return routes
