"""The exceptions vmpooler raises, one tree for the whole service.

    VmpoolerError
    ├── ConfigError                 a configuration file or value is wrong (names the key path)
    ├── StoreError                  the Redis data layer failed
    │   └── StoreUnavailable        Redis cannot be reached (API answers 503)
    ├── StateError
    │   ├── IllegalTransition       a lifecycle move the state table forbids (a bug, never ignored)
    │   └── LeaseLost               another manager took over this pool (its lease lapsed)
    ├── AuthUnavailable             the authentication directory (LDAP) cannot be reached
    ├── ServerUnreachable           (client) the vmpooler API did not answer: refused, timed out
    ├── ProviderError               a provider call failed
    │   ├── ProviderTimeout         it did not answer in time
    │   ├── PermanentProviderError  retrying cannot help (bad template, bad credentials, ...)
    │   └── NotSupported            the provider lacks this optional capability
    └── ApiError                    a request the API refuses; carries the HTTP status
        ├── BadRequest (400), Unauthorized (401), Forbidden (403), NotFound (404),
        ├── MethodNotAllowed (405), Conflict (409), PayloadTooLarge (413),
        ├── TooManyRequests (429), ServiceUnavailable (503)

Foreign exceptions (redis, pydantic, provider SDKs) are translated at the boundary with
``raise ... from exc`` so callers only ever catch these.

Each error carries the context it was raised in, as httpx's carry ``request``: ``pool``, ``vm`` and ``op``
(the provider call or operation), given where it is raised or added on the way up by
:meth:`VmpoolerError.with_context`; and ``metric_key``, the cause its error count is recorded under.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self


class VmpoolerError(Exception):
    """Base of every error vmpooler raises on purpose."""

    #: the cause an operator counts this error by (the ``cause`` of the error counters)
    metric_key: str = "error"
    pool: str | None = None
    vm: str | None = None
    op: str | None = None

    def with_context(self, *, pool: str | None = None, vm: str | None = None, op: str | None = None) -> Self:
        """Fill in what the raiser did not know (what it did know wins); returns the error, to re-raise."""
        self.pool = self.pool or pool
        self.vm = self.vm or vm
        self.op = self.op or op
        return self


class ConfigError(VmpoolerError):
    """A configuration problem; ``problems`` lists each as ``key.path: what is wrong``."""

    metric_key = "config"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class StoreError(VmpoolerError):
    metric_key = "store"


class StoreUnavailable(StoreError):
    metric_key = "store_unavailable"


class StateError(VmpoolerError):
    metric_key = "state"


class IllegalTransition(StateError):
    metric_key = "illegal_transition"


class LeaseLost(StateError):
    """This manager's lease on a pool passed to another manager; it must stop changing the pool."""

    metric_key = "lease_lost"


class AuthUnavailable(VmpoolerError):
    metric_key = "auth_unavailable"


class ServerUnreachable(VmpoolerError):
    """The client could not reach the vmpooler API (connection refused, DNS failure, time-out)."""

    metric_key = "server_unreachable"


class ProviderError(VmpoolerError):
    """A provider call failed; the manager adds the pool, VM and call (``op``) on the way up."""

    metric_key = "provider"
    #: what a failed call counts as, by the provider method that failed (the original's causes)
    failed_calls: ClassVar[dict[str, str]] = {"create_vm": "clone_failed", "destroy_vm": "destroy_failed"}

    def with_context(self, *, pool: str | None = None, vm: str | None = None, op: str | None = None) -> Self:
        super().with_context(pool=pool, vm=vm, op=op)
        self.metric_key = self.failed_calls.get(self.op or "", self.metric_key)
        return self


class ProviderTimeout(ProviderError):
    metric_key = "provider_timeout"


class PermanentProviderError(ProviderError):
    metric_key = "provider_permanent"
    #: a clone that retrying cannot help is the original's ``permanently_failed``
    failed_calls = {**ProviderError.failed_calls, "create_vm": "permanently_failed"}


class NotSupported(ProviderError):
    metric_key = "provider_not_supported"


class ApiError(VmpoolerError):
    """An error the API turns into ``{"ok": false, "error": message, **extra}`` with ``status``."""

    status: int = 400
    metric_key = "api"
    #: response headers the status calls for (a 401's WWW-Authenticate, a 429's Retry-After)
    headers: dict[str, str] = {}

    def __init__(self, message: str, /, **extra: Any) -> None:
        self.message = message
        self.extra = extra  # goes into the reply body, so its ``pool`` is the context too
        if isinstance(extra.get("pool"), str):
            self.pool = extra["pool"]
        super().__init__(message)


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401
    headers = {"WWW-Authenticate": 'Basic realm="Authentication required"'}


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503
