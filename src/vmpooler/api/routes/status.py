"""Service status routes: ``/status`` (per API version) and the always-mounted ``/healthcheck``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from vmpooler.api.deps import Status
from vmpooler.api.responses import PrettyJSONResponse, error, ok
from vmpooler.api.schemas import errors
from vmpooler.api.summary import SummaryService
from vmpooler.errors import StoreError


def router() -> APIRouter:
    routes = APIRouter(tags=["status"], responses=errors(503))

    @routes.get("/status")
    async def status(request: Request, service: Status) -> Response:
        # bare `?view` means everything, `?view=` only the status section (as the original)
        views: set[str] | None = None
        if request.query_params.get("view"):
            views = {v.strip() for v in request.query_params["view"].split(",")}
        elif "view=" in request.url.query.split("&"):
            views = set()
        return PrettyJSONResponse(await service.status(views))

    @routes.get("/summary", responses=errors(400))
    async def summary(request: Request) -> Response:
        service: SummaryService = request.app.state.summary
        q = request.query_params
        return PrettyJSONResponse(await service.summary(q.get("from"), q.get("to")))

    @routes.get("/summary/{section}", responses=errors(400, 404))
    async def summary_section(section: str, request: Request) -> Response:
        service: SummaryService = request.app.state.summary
        q = request.query_params
        return PrettyJSONResponse(await service.summary(q.get("from"), q.get("to"), section))

    @routes.get("/summary/{section}/{key}", responses=errors(400, 404))
    async def summary_key(section: str, key: str, request: Request) -> Response:
        service: SummaryService = request.app.state.summary
        q = request.query_params
        return PrettyJSONResponse(await service.summary(q.get("from"), q.get("to"), section, key))

    @routes.get("/poolstat")
    async def poolstat(request: Request, service: Status) -> Response:
        names = [n.strip() for n in request.query_params.get("pool", "").split(",") if n.strip()]
        return PrettyJSONResponse(await service.poolstat(names))

    @routes.get("/totalrunning")
    async def total_running(service: Status) -> Response:
        return PrettyJSONResponse({"running": await service.total_running()})

    return routes


def health_router() -> APIRouter:
    routes = APIRouter(tags=["status"], responses=errors(503))

    @routes.get("/healthcheck")
    async def healthcheck(service: Status) -> Response:
        try:
            await service.store.ping()
        except StoreError as exc:
            return error(503, f"unhealthy: {exc}", redis=False)
        return ok(redis=True)

    return routes
