"""What a route or the auth step tells the audit entry of its request (api/middleware/audit.py reads it)."""

from __future__ import annotations

from starlette.requests import Request

STATE_KEY = "audit"


def note(request: Request, **what: str) -> None:
    """Tell the audit entry of this request what the path does not say: ``user`` (whom the token or
    password belongs to), ``vm`` (a checkout's VMs), ``pool``, ``target``."""
    noted: dict[str, str] = request.scope.setdefault("state", {}).setdefault(STATE_KEY, {})
    noted.update(what)
