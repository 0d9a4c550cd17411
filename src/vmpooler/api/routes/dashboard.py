"""Dashboard routes: the static page, its JSON feeds (including the original's), and pool history."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from vmpooler.api.responses import PrettyJSONResponse, ok
from vmpooler.api.schemas import errors
from vmpooler.api.services.dashboard import DashboardService
from vmpooler.api.services.feed import DashboardFeed
from vmpooler.errors import NotFound


async def dashboard_service(request: Request) -> DashboardService:
    service: DashboardService = request.app.state.dashboard
    return service


Dashboard = Annotated[DashboardService, Depends(dashboard_service)]


async def dashboard_feed(request: Request) -> DashboardFeed:
    feed: DashboardFeed = request.app.state.dashboard_feed
    return feed


Feed = Annotated[DashboardFeed, Depends(dashboard_feed)]


def cacheable_json(request: Request, body: Any, pretty: bool = False) -> Response:
    """JSON (compact, or indented as the API's other replies) with an ``ETag``; ``304`` without a body
    when the client already has these bytes. ``no-cache``: a browser may keep the copy but must ask
    every time, so a poll is never stale."""
    content = orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else None)
    tag = f'"{hashlib.blake2b(content, digest_size=12).hexdigest()}"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if tag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def feeds() -> APIRouter:
    routes = APIRouter(tags=["dashboard"], responses=errors(400, 404, 503))

    @routes.get("/dashboard/stats/vmpooler/pool")
    async def pool_stats(request: Request, service: Dashboard) -> Response:
        return PrettyJSONResponse(await service.pool_stats(_flag(request, "history")))

    @routes.get("/dashboard/stats/vmpooler/running")
    async def running_stats(request: Request, service: Dashboard) -> Response:
        return PrettyJSONResponse(await service.running_stats(_flag(request, "history")))

    @routes.get("/dashboard/stats/vmpooler/users")
    async def users(service: Dashboard) -> Response:
        return ok(users=await service.users())

    @routes.get("/api/v3/history")
    async def history(request: Request, service: Dashboard) -> Response:
        q = request.query_params
        body = await service.history(q.get("pool") or None, q.get("range", "1h"), q.get("series") == "overall")
        return cacheable_json(request, {"ok": True, **body}, pretty=True)

    @routes.get("/dashboard/feed")
    async def feed(request: Request, feed: Feed) -> Response:
        """Everything the dashboard polls, in one compact reply with an ``ETag`` (see docs/dashboard.md);
        ``?pool=`` narrows "who has what" to that pool."""
        pool = request.query_params.get("pool") or None
        if pool is not None and feed.settings.pool(pool) is None:
            raise NotFound(f"unknown pool {pool!r}; GET /api/v3/status lists the pools")
        return cacheable_json(request, await feed.feed(pool))

    @routes.get("/", include_in_schema=False)
    async def index() -> Response:
        return RedirectResponse("/dashboard/", status_code=302)

    @routes.get("/dashboard", include_in_schema=False)
    async def dashboard_slash() -> Response:
        return RedirectResponse("/dashboard/", status_code=302)

    return routes
