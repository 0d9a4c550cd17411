"""Trailing slashes: ``/api/v3/status/`` is answered as ``/api/v3/status``, directly, as the original does."""

from __future__ import annotations

from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send


class AnswerTrailingSlashes:
    """Rewrites ``<route>/`` to ``<route>`` before routing when only the form without the slash is a route.

    The original (Sinatra, routes written ``/status/?``) answers both forms; Starlette would answer
    the slashed form with a 307, which clients that POST (curl, vmfloaty) do not all follow. Mounted
    static trees (the dashboard) are left alone: there the slash is part of the address.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/") and not self._routed(scope):
                stripped = {**scope, "path": path.rstrip("/") or "/"}
                if stripped["path"] not in self._mounted() and self._routed(stripped):
                    raw = scope.get("raw_path")
                    if isinstance(raw, bytes):
                        stripped["raw_path"] = raw.rstrip(b"/") or b"/"
                    scope = stripped
        await self.app(scope, receive, send)

    def _mounted(self) -> set[str]:
        """Where static trees are mounted: ``/dashboard/`` is the page itself, not ``/dashboard``."""
        return {route.path for route in self.router.routes if isinstance(route, Mount)}

    def _routed(self, scope: Scope) -> bool:
        """Whether a route (not a mounted tree) takes this path, for any method."""
        for route in self.router.routes:
            if isinstance(route, Mount):
                continue
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return True
        return False
