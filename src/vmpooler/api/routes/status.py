"""Service status routes: ``/status`` (per API version) and the always-mounted ``/healthcheck``."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from vmpooler.api.auth import TOKEN_HEADER, ApiAuth
from vmpooler.api.deps import Status
from vmpooler.api.responses import PrettyJSONResponse, error, ok
from vmpooler.api.schemas import errors
from vmpooler.api.services.summary import SummaryService
from vmpooler.api.services.waiting import quota_usage
from vmpooler.errors import ApiError, StoreError
from vmpooler.limits import pool_sizes
from vmpooler.metrics import multiprocess, prometheus_of
from vmpooler.states import VMState


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
        report = await service.status(views)
        if service.settings.quotas.owners and request.headers.get(TOKEN_HEADER):
            # per-owner usage against the quotas, for admins only (it names users): docs/waiting.md
            auth: ApiAuth = request.app.state.auth
            with contextlib.suppress(ApiError):  # a bad token still gets the public report
                caller = await auth.token(request, required=False)
                if caller is not None and caller.admin:
                    report = {**report, "quotas": await quota_usage(service.settings, service.store.queues)}
        return PrettyJSONResponse(report)

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


#: a manager silent this long (seconds) counts as gone for /healthcheck (its heartbeat is every 5 s)
MANAGER_SILENCE_SECONDS = 30.0


def health_router(prometheus_path: str = "/prometheus") -> APIRouter:
    routes = APIRouter(tags=["status"], responses=errors(503))

    @routes.get("/healthcheck")
    async def healthcheck(service: Status) -> Response:
        """200 when Redis answers and a pool manager has sent a heartbeat recently; 503 otherwise."""
        try:
            await service.store.ping()
            managers = await service.store.live_managers(service.clock() - MANAGER_SILENCE_SECONDS)
        except StoreError:
            return error(503, "unhealthy: Redis does not answer", headers={"Retry-After": "5"}, redis=False, managers=0)
        if managers == 0:
            return error(
                503,
                "unhealthy: no pool manager is running (start `vmpooler manager`)",
                headers={"Retry-After": "5"},
                redis=True,
                managers=0,
            )
        return ok(redis=True, managers=managers)

    @routes.get(prometheus_path, include_in_schema=False)
    async def prometheus(request: Request, service: Status) -> Response:
        sink = prometheus_of(request.app.state.metrics)
        if sink is None:
            return error(404, "Prometheus metrics are not enabled")
        # pool levels are read from Redis at scrape time: right whichever process runs the managers
        try:
            counts = await service.store.counts([p.name for p in service.settings.pools])
            sizes = pool_sizes(service.settings, await service.store.overrides.all("size"))
            for pool in service.settings.pools:
                c = counts[pool.name]
                sink.levels(pool.name, c[VMState.READY], c[VMState.RUNNING], c[VMState.PENDING], sizes[pool.name])
        except StoreError:
            pass  # serve the process's own counters even while Redis is away
        # under `serve` the manager counts in a process of its own: read every process's samples
        registry = multiprocess.shared_registry() if multiprocess.enabled() else sink.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return routes
