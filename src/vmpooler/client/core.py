"""What the sync and async clients share: each API call as a request description plus a reply parser.

An operation here builds a :class:`Call` (method, path, body, credentials, and how to read the reply).
:class:`~vmpooler.client.sync.Client` and :class:`~vmpooler.client.async_.AsyncClient` only send it, so
the two cannot drift apart. Error replies become the :mod:`vmpooler.errors` class for their status, with
the server's ``error`` message; transport failures become :class:`~vmpooler.errors.ServerUnreachable`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from vmpooler import errors
from vmpooler.errors import ApiError, ServerUnreachable

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:4567"
API_PREFIX = "/api/v3"
TOKEN_HEADER = "X-AUTH-TOKEN"

#: a checkout or on-demand request: ``{"debian": 2}``, ``"debian"`` or ``["debian", "debian", "centos"]``
PoolSpec = Mapping[str, int] | str | Sequence[str]
Body = dict[str, Any]


@dataclass(frozen=True)
class VM:
    """A checked-out VM: its short ``hostname``, its ``fqdn`` and the ``pool`` name as requested."""

    hostname: str
    fqdn: str
    pool: str

    @classmethod
    def from_name(cls, name: str, pool: str) -> VM:
        return cls(hostname=name.split(".", 1)[0], fqdn=name, pool=pool)

    def as_dict(self) -> dict[str, str]:
        return {"hostname": self.hostname, "fqdn": self.fqdn, "pool": self.pool}


@dataclass(frozen=True)
class RequestStatus:
    """An on-demand request: ``ready`` with its ``vms``, or still ``pending`` (name → counts), or ended."""

    request_id: str
    ready: bool
    vms: list[VM] = field(default_factory=list)
    #: per name requested, ``{"ready": n, "pending": m}`` while the request waits
    pending: dict[str, dict[str, int]] = field(default_factory=dict)
    #: set when the request was deleted or has failed (then it will never be ready)
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.ready or self.message is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "ready": self.ready,
            "vms": [vm.as_dict() for vm in self.vms],
            "pending": self.pending,
            "message": self.message,
        }


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request, described; ``parse`` turns the (successful) JSON reply into the result."""

    method: str
    path: str
    parse: Callable[[int, Any], T]
    json: Any = None
    params: dict[str, str] | None = None
    basic_auth: tuple[str, str] | None = None
    #: statuses that are answers rather than errors (besides 2xx)
    ok_statuses: frozenset[int] = frozenset()
    #: seconds to wait for the reply instead of the client's timeout (a checkout that waits its turn)
    timeout: float | None = None

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """This call as a request of ``http`` (the sync and the async client send it alike)."""
        timeout = httpx.USE_CLIENT_DEFAULT if self.timeout is None else self.timeout
        return http.build_request(self.method, self.path, json=self.json, params=self.params, timeout=timeout)


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        errors.BadRequest,
        errors.Unauthorized,
        errors.Forbidden,
        errors.NotFound,
        errors.MethodNotAllowed,
        errors.Conflict,
        errors.PayloadTooLarge,
        errors.TooManyRequests,
        errors.ServiceUnavailable,
    )
}


def api_error(status: int, body: Any, reason: str = "") -> ApiError:
    """The exception for an error reply: its class by status, the server's ``error`` as its message."""
    extra: dict[str, Any] = {}
    message = ""
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("message") or "")
        extra = {k: v for k, v in body.items() if k not in ("ok", "error")}
    if not message:
        message = f"HTTP {status} {reason}".strip()
    cls = _ERRORS_BY_STATUS.get(status)
    if cls is not None:
        return cls(message, **extra)
    exc = ApiError(message, **extra)
    exc.status = status  # e.g. a 500: still an ApiError, with the real status
    return exc


def read_reply(call: Call[T], response: httpx.Response) -> T:
    """Parse ``response`` for ``call``, or raise the API error it carries."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.is_success or response.status_code in call.ok_statuses:
        return call.parse(response.status_code, body)
    raise api_error(response.status_code, body, response.reason_phrase)


@contextlib.contextmanager
def transport_errors(url: str) -> Iterator[None]:
    """Translate httpx's transport failures into :class:`ServerUnreachable` naming the URL."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ServerUnreachable(f"vmpooler at {url} did not answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ServerUnreachable(f"cannot reach vmpooler at {url}: {exc or type(exc).__name__}") from exc


#: a version suffix on the URL given, as vmfloaty's configs carry (``https://host/api/v1``)
_VERSION_SUFFIX = re.compile(r"/api/v\d+$")


def base_url(url: str) -> str:
    """The API's root for a service URL given with or without ``/api/vN``: this client speaks v3."""
    return _VERSION_SUFFIX.sub("", url.rstrip("/")) + API_PREFIX


def headers(token: str | None) -> dict[str, str]:
    return {TOKEN_HEADER: token} if token else {}


def counts(spec: PoolSpec) -> dict[str, int]:
    """``{"debian": 2}``, ``"debian"`` or ``["debian", "debian"]`` as name → count."""
    if isinstance(spec, str):
        return {spec: 1}
    if isinstance(spec, Mapping):
        return {str(name): int(n) for name, n in spec.items()}
    wanted: dict[str, int] = {}
    for name in spec:
        wanted[name] = wanted.get(name, 0) + 1
    return wanted


def _seg(value: str) -> str:
    return quote(value, safe="")


def _body(body: Any) -> Body:
    return body if isinstance(body, dict) else {}


def _none(_status: int, _body: Any) -> None:
    return None


def _hostnames(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


def _vms(body: Body, skip: tuple[str, ...]) -> list[VM]:
    return [
        VM.from_name(name, pool)
        for pool, entry in body.items()
        if pool not in skip and isinstance(entry, dict)
        for name in _hostnames(entry.get("hostname"))
    ]


def _only_entry(body: Any) -> dict[str, Any]:
    """The one object a reply keys by a name it chose (``{"ok": true, "<short name>": {...}}``)."""
    entries = [v for k, v in _body(body).items() if k != "ok" and isinstance(v, dict)]
    return dict(entries[0]) if entries else {}


# --- VMs -----------------------------------------------------------------------------------------


def pools() -> Call[list[str]]:
    return Call("GET", "/vm", lambda _s, body: [str(p) for p in body])


#: seconds a waiting checkout's reply may take beyond its wait budget (the server answers at the budget's end)
WAIT_SLACK_SECONDS = 10.0


def checkout(spec: PoolSpec, wait: float = 0.0) -> Call[list[VM]]:
    """``wait`` > 0: the server holds the request up to that many seconds for its turn (docs/waiting.md)."""
    parse = lambda _s, body: _vms(_body(body), ("ok", "domain", "waited"))  # noqa: E731
    if wait <= 0:
        return Call("POST", "/vm", parse, json=counts(spec))
    return Call(
        "POST", "/vm", parse, json=counts(spec), params={"wait": f"{wait:g}"}, timeout=wait + WAIT_SLACK_SECONDS
    )


def queue(pool: str) -> Call[dict[str, Any]]:
    """A pool's waiting checkouts: ``waiting``, ``waiting_vms``, ``oldest_wait``, the caller's ``position``."""
    return Call("GET", f"/vm/{_seg(pool)}/queue", lambda _s, body: {k: v for k, v in _body(body).items() if k != "ok"})


def query(host: str) -> Call[dict[str, Any]]:
    def parse(_status: int, body: Any) -> dict[str, Any]:
        entries = [(k, v) for k, v in _body(body).items() if k != "ok" and isinstance(v, dict)]
        if not entries:
            raise ApiError(f"unexpected reply for VM {host!r}: {body!r}")
        name, info = entries[0]
        return {"hostname": name, **info}

    return Call("GET", f"/vm/{_seg(host)}", parse)


def modify(host: str, lifetime: int | None = None, tags: Mapping[str, str] | None = None) -> Call[None]:
    body: Body = {}
    if lifetime is not None:
        body["lifetime"] = lifetime
    if tags:
        body["tags"] = dict(tags)
    if not body:
        raise ValueError("modify needs a lifetime or tags")
    return Call("PUT", f"/vm/{_seg(host)}", _none, json=body)


def delete(host: str) -> Call[None]:
    return Call("DELETE", f"/vm/{_seg(host)}", _none)


def snapshot(host: str) -> Call[str]:
    return Call("POST", f"/vm/{_seg(host)}/snapshot", lambda _s, body: str(_only_entry(body)["snapshot"]))


def revert(host: str, snapshot_id: str) -> Call[None]:
    return Call("POST", f"/vm/{_seg(host)}/snapshot/{_seg(snapshot_id)}", _none)


def add_disk(host: str, gb: int) -> Call[str]:
    return Call("POST", f"/vm/{_seg(host)}/disk/{int(gb)}", lambda _s, body: str(_only_entry(body)["disk"]))


# --- status ----------------------------------------------------------------------------------------


def status(view: Sequence[str] | None = None) -> Call[dict[str, Any]]:
    params = None if view is None else {"view": ",".join(view)}
    return Call("GET", "/status", lambda _s, body: dict(_body(body)), params=params)


def summary(from_: str | None = None, to: str | None = None) -> Call[dict[str, Any]]:
    params = {k: v for k, v in (("from", from_), ("to", to)) if v}
    return Call("GET", "/summary", lambda _s, body: dict(_body(body)), params=params or None)


# --- tokens ----------------------------------------------------------------------------------------


def create_token(user: str, password: str) -> Call[str]:
    return Call("POST", "/token", lambda _s, body: str(_body(body)["token"]), basic_auth=(user, password))


def token_info(token: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/token/{_seg(token)}", lambda _s, body: _only_entry(body))


def list_tokens(user: str, password: str) -> Call[dict[str, dict[str, Any]]]:
    def parse(_status: int, body: Any) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in _body(body).items() if k != "ok" and isinstance(v, dict)}

    return Call("GET", "/token", parse, basic_auth=(user, password))


def delete_token(token: str, user: str, password: str) -> Call[None]:
    return Call("DELETE", f"/token/{_seg(token)}", _none, basic_auth=(user, password))


# --- on-demand -------------------------------------------------------------------------------------


def request(spec: PoolSpec, request_id: str | None = None) -> Call[str]:
    body: Body = dict(counts(spec))
    if request_id is not None:
        body["request_id"] = request_id
    return Call("POST", "/ondemandvm", lambda _s, reply: str(_body(reply)["request_id"]), json=body)


def _request_status(status: int, reply: Any) -> RequestStatus:
    body = _body(reply)
    rid = str(body.get("request_id", ""))
    skip = ("ok", "request_id", "ready", "message")
    if body.get("ready") is True:
        return RequestStatus(rid, True, vms=_vms(body, skip))
    pending = {
        name: {k: int(v) for k, v in entry.items()}
        for name, entry in body.items()
        if name not in skip and isinstance(entry, dict)
    }
    message = body.get("message")
    return RequestStatus(rid, False, pending=pending, message=str(message) if message else None)


def request_status(request_id: str) -> Call[RequestStatus]:
    return Call("GET", f"/ondemandvm/{_seg(request_id)}", _request_status)


def cancel_request(request_id: str) -> Call[None]:
    return Call("DELETE", f"/ondemandvm/{_seg(request_id)}", _none)
