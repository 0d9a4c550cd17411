"""Dashboard routes: the static page, its JSON feeds (including the original's), and pool history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from vmpooler.api.dashboard import DashboardService
from vmpooler.api.responses import PrettyJSONResponse, ok
from vmpooler.api.schemas import errors


async def dashboard_service(request: Request) -> DashboardService:
    service: DashboardService = request.app.state.dashboard
    return service


Dashboard = Annotated[DashboardService, Depends(dashboard_service)]


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
        return ok(**await service.history(q.get("pool") or None, q.get("range", "1h"), q.get("series") == "overall"))

    @routes.get("/", include_in_schema=False)
    async def index() -> Response:
        return RedirectResponse("/dashboard/", status_code=302)

    @routes.get("/dashboard", include_in_schema=False)
    async def dashboard_slash() -> Response:
        return RedirectResponse("/dashboard/", status_code=302)

    return routes
