"""The API application factory: routes for every mounted version, and errors as JSON, never tracebacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vmpooler.api.responses import error, ok
from vmpooler.api.routes import status as status_routes
from vmpooler.api.routes import vms as vm_routes
from vmpooler.api.service import VMService
from vmpooler.api.shapes import V1, V3
from vmpooler.api.status import StatusService
from vmpooler.config import Settings
from vmpooler.errors import ApiError, StoreError, StoreUnavailable
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.api")

API_PREFIX = "/api/v3"


def create_app(settings: Settings, store: Store, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """A FastAPI app serving ``/api/v3`` and the seed README's unversioned paths over ``store``."""
    app = FastAPI(title="vmpooler", version="3", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.settings = settings
    app.state.store = store
    app.state.vms = VMService(settings, store, clock)
    app.state.status = StatusService(settings, store, clock)

    app.include_router(vm_routes.router(V3), prefix=API_PREFIX)
    app.include_router(status_routes.router(), prefix=API_PREFIX)
    app.include_router(vm_routes.router(V1))
    app.include_router(status_routes.router())
    app.include_router(status_routes.health_router())

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return ok(service=settings.config.site_name, api=API_PREFIX, status=f"{API_PREFIX}/status")

    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return error(exc.status, exc.message, **exc.extra)

    @app.exception_handler(StoreUnavailable)
    async def store_down(_: Request, exc: StoreUnavailable) -> Response:
        log.warning("answering 503: %s", exc)
        return error(503, "the datastore (Redis) is unavailable; retry in a few seconds", headers={"Retry-After": "5"})

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, exc: StoreError) -> Response:
        log.error("store error: %s", exc)
        return error(503, f"the datastore (Redis) failed: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}; see /api/docs"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error(400, f"invalid request: {problems}")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal error; the server log has the details")
