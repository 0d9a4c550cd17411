"""Security headers on every reply: a strict Content-Security-Policy for the dashboard, nosniff, no-store for tokens.

The dashboard is static files plus JSON feeds of the same origin: no inline script or style, no
third-party host, so its policy allows only the page's own files (and ``data:`` images: its favicon
is an inline SVG). Setting ``element.style`` from script, as the page and uPlot do, is not an inline
style in CSP's sense and needs no ``'unsafe-inline'``. The Swagger UI page (``/api/docs``) sets its
own, looser policy (see ``swagger_policy``); a reply that already has a policy keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: what a page (the dashboard, the API docs) gets besides its policy
PAGE_HEADERS = {"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}

# the dashboard's JSON feeds (/dashboard/feed, /dashboard/stats/...) are data, not pages: no policy on them
_PAGES = re.compile(r"/(?:dashboard(?:/(?!feed$|stats/).*)?|api/docs|api/static/.*)?")
_TOKEN_ROUTES = re.compile(r"(?:/api/v\d+)?/token(?:/.*)?")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def swagger_policy(html: str) -> str:
    """The policy for the Swagger UI page: its one inline script allowed by hash, and the inline styles
    Swagger UI writes (it cannot work without them); everything else as the dashboard."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return DASHBOARD_POLICY.replace("script-src 'self'", f"script-src 'self' {hashes}").replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    )


class SecurityHeaders:
    """Adds ``X-Content-Type-Options: nosniff`` to every reply; the dashboard's policy and the page
    headers to the dashboard and API docs; ``Cache-Control: no-store`` to the token routes (errors
    included), so no cache keeps a token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = {"X-Content-Type-Options": "nosniff"}
        if _PAGES.fullmatch(path):
            extra |= PAGE_HEADERS | {"Content-Security-Policy": DASHBOARD_POLICY}
        elif _TOKEN_ROUTES.fullmatch(path):
            extra["Cache-Control"] = "no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
