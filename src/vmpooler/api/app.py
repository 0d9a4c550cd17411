"""The API application factory: routes for every mounted version, and errors as JSON, never tracebacks."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse, Response

from vmpooler.api.auth import ApiAuth
from vmpooler.api.deps import MAX_BODY_BYTES
from vmpooler.api.middleware.audit import AuditRequests
from vmpooler.api.middleware.headers import SecurityHeaders, swagger_policy
from vmpooler.api.middleware.observe import ObserveRequests, loggable_path
from vmpooler.api.middleware.ratelimit import RateLimitMiddleware
from vmpooler.api.middleware.request_guard import RequestGuard
from vmpooler.api.middleware.slashes import AnswerTrailingSlashes
from vmpooler.api.responses import error
from vmpooler.api.routes import config as config_routes
from vmpooler.api.routes import dashboard as dashboard_routes
from vmpooler.api.routes import events as event_routes
from vmpooler.api.routes import ondemand as ondemand_routes
from vmpooler.api.routes import status as status_routes
from vmpooler.api.routes import tokens as token_routes
from vmpooler.api.routes import vm_tasks as vm_task_routes
from vmpooler.api.routes import vms as vm_routes
from vmpooler.api.routes import webhooks as webhook_routes
from vmpooler.api.services.dashboard import DashboardService
from vmpooler.api.services.event_stream import EventStreams
from vmpooler.api.services.feed import DashboardFeed
from vmpooler.api.services.ondemand import OndemandService
from vmpooler.api.services.runtime_config import RuntimeConfig
from vmpooler.api.services.status import StatusService
from vmpooler.api.services.summary import SummaryService
from vmpooler.api.services.vms import VMService
from vmpooler.api.services.webhooks import WebhookService
from vmpooler.api.shapes import V1, V2, V3, Flavor
from vmpooler.auth import AuthBackend, build_backend
from vmpooler.auth.oidc import OidcVerifier
from vmpooler.auth.oidc_config import read_oidc
from vmpooler.auth.policy import read_policy
from vmpooler.auth.tokens import TokenService
from vmpooler.config import Settings, describe, enabled_limits
from vmpooler.config.rate_limits import RateLimits
from vmpooler.errors import ApiError, StoreError, StoreUnavailable
from vmpooler.metrics import Metrics, build_metrics
from vmpooler.metrics.sections import PrometheusSection
from vmpooler.store.redis import Store
from vmpooler.store.webhooks import WebhookStore

log = logging.getLogger("vmpooler.api")

API_PREFIX = "/api/v3"

DESCRIPTION = """Pools of ready virtual machines. Every route exists under `/api/v3` (fully qualified
hostnames), `/api/v2`, `/api/v1` and unversioned (short hostnames plus a `domain` key, as the 2015
API). Request bodies are JSON, sent as `application/json`; `curl -d`'s form type (or none) is read as
JSON too, except from a browser page (see docs/security.md). Every error is
`{"ok": false, "error": "<what to do>"}` with the status code that fits."""

#: where each API version is mounted; the unversioned seed paths answer as v1 did
MOUNTS: tuple[tuple[str, Flavor], ...] = (("/api/v3", V3), ("/api/v2", V2), ("/api/v1", V1), ("", V1))


#: FastAPI >= 0.165 looks up OpenTelemetry's global providers on every request (2.6 % of a checkout's CPU,
#: py-spy) though vmpooler configures none; it reports through its own metrics (vmpooler.metrics)
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await app.state.auth.close()


def create_app(
    settings: Settings,
    store: Store,
    *,
    auth_backend: AuthBackend | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """A FastAPI app serving every API version over ``store``. The auth backend defaults to the
    one ``:auth:`` configures."""
    app = FastAPI(
        **_NO_NATIVE_TELEMETRY,
        title="vmpooler",
        version="3",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    metrics = metrics if metrics is not None else build_metrics(settings)
    app.state.metrics = metrics
    backend = auth_backend if auth_backend is not None else build_backend(settings.auth)
    policy = read_policy(settings.auth)
    issuers = read_oidc(settings.auth)
    oidc = OidcVerifier(issuers, policy.is_admin, clock) if issuers else None
    app.state.auth = auth = ApiAuth(backend, TokenService(store.tokens, clock, policy), oidc)
    app.state.vms = VMService(settings, store, clock, auth_enabled=auth.enabled, metrics=metrics)
    app.state.status = StatusService(settings, store, clock)
    app.state.runtime_config = RuntimeConfig(settings, store, clock)
    app.state.vms.on_change = app.state.runtime_config.on_change = app.state.status.invalidate
    app.state.ondemand = OndemandService(settings, store, clock)
    app.state.summary = SummaryService(store, clock)
    app.state.dashboard = DashboardService(settings, store, clock)
    app.state.dashboard_feed = DashboardFeed(settings, store, app.state.status, clock)
    app.state.event_streams = EventStreams(
        store, settings.config.events_max_streams, settings.config.events_keepalive_seconds
    )
    app.state.webhooks = WebhookService(settings, WebhookStore(store.client), auth_enabled=auth.enabled)

    # each router is built once and included under every prefix that serves it: building the routes is
    # most of create_app's time (FastAPI compiles a validator per parameter), and a mount only prefixes them
    config, status, tokens, vm_tasks = (
        r.router() for r in (config_routes, status_routes, token_routes, vm_task_routes)
    )
    flavors = dict.fromkeys(flavor for _, flavor in MOUNTS)  # v1 serves two prefixes
    flavored = {flavor: (vm_routes.router(flavor), ondemand_routes.router(flavor)) for flavor in flavors}
    for prefix, flavor in MOUNTS:
        vms, ondemand = flavored[flavor]
        # the VM task routes before the VM routes: POST /vm/{pools} would otherwise take /vm/<host>/snapshot
        for router in (vm_tasks, vms, config, ondemand, status, tokens):
            app.include_router(router, prefix=prefix)
    app.include_router(event_routes.router(), prefix=API_PREFIX)  # new routes: v3 only
    app.include_router(webhook_routes.router(), prefix=API_PREFIX)
    prometheus_path = (settings.prometheus or PrometheusSection()).prometheus_endpoint
    app.include_router(status_routes.health_router(prometheus_path))

    app.mount("/api/static", StaticFiles(packages=[("vmpooler.api", "static")]), name="api-static")

    # served from the package, not a CDN, so the page works offline
    swagger_page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="vmpooler API",
        swagger_js_url="/api/static/swagger/swagger-ui-bundle.js",
        swagger_css_url="/api/static/swagger/swagger-ui.css",
        swagger_favicon_url="/api/static/swagger/favicon-32x32.png",
    )
    swagger_html = bytes(swagger_page.body).decode()
    swagger_headers = {"Content-Security-Policy": swagger_policy(swagger_html)}

    @app.get("/api/docs", include_in_schema=False)
    async def docs() -> Response:
        return HTMLResponse(swagger_html, headers=swagger_headers)

    app.include_router(dashboard_routes.feeds())
    # mounted after the JSON feeds above, which live under the same prefix
    app.mount("/dashboard", StaticFiles(packages=[("vmpooler.dashboard", "static")], html=True), name="dashboard")

    app.add_middleware(AnswerTrailingSlashes, router=app.router)
    # inside ObserveRequests, so refusals are counted and logged like any reply
    app.add_middleware(
        RequestGuard,
        max_body_bytes=MAX_BODY_BYTES,
        body_timeout=settings.config.api_header_timeout,
        allowed_hosts=settings.config.allowed_hosts,
    )
    app.add_middleware(ObserveRequests, metrics=metrics, log_requests=settings.config.request_logger)
    install_error_handlers(app)
    app.openapi = lambda: openapi_without_422(app)  # type: ignore[method-assign]
    if (limits := enabled_limits(settings)) is not None:
        app.add_middleware(RateLimitMiddleware, limits=limits, store=store.ratelimit, clock=clock)
    # outside the limiter, so its 429s are recorded too; the client address as the limiter reads it
    trusted = RateLimits.model_validate(settings.rate_limits or {}).trusted_proxies
    app.add_middleware(AuditRequests, trail=store.audit_trail, trusted_proxies=trusted)
    # gzip, as the original's Rack::Deflater: /status of 1,000 pools is 170 KB raw, 15 KB compressed;
    # replies under a kilobyte are sent as they are (the headers would cost more than it saves)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(SecurityHeaders)  # outermost: rate-limit refusals get the headers too
    return app


def openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents 422 for validation errors; ours answer 400 (see install_error_handlers)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        app.openapi_schema = schema
    return app.openapi_schema


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return error(exc.status, exc.message, headers=exc.headers or None, **exc.extra)

    last_logged = [0.0]

    @app.exception_handler(StoreUnavailable)
    async def store_down(_: Request, exc: StoreUnavailable) -> Response:
        # while Redis hangs these come in thousands a second (each fails at once): log one a second
        now = time.monotonic()
        if now - last_logged[0] >= 1.0:
            last_logged[0] = now
            log.warning("answering 503: %s", exc)
        # a hung Redis is probed every 0.1 s and calls resume within a second of its return
        return error(503, "the datastore (Redis) is unavailable; retry in a second", headers={"Retry-After": "1"})

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
        problems = "; ".join(describe(exc, wording="terse"))
        return error(400, f"invalid request: {problems}")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, loggable_path(request.url.path))
        return error(500, "internal error; the server log has the details")
