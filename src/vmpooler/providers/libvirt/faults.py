"""Turns a ``libvirtError`` into our ProviderError kinds, keeping libvirt's own message."""

from __future__ import annotations

from typing import Protocol, cast

import libvirt  # type: ignore[import-untyped,unused-ignore]

from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout

LibvirtError: type[Exception] = libvirt.libvirtError
NO_DOMAIN: int = libvirt.VIR_ERR_NO_DOMAIN
_FROM_RPC: int = libvirt.VIR_FROM_RPC

#: the connection to the daemon is gone or never came up: reconnecting may help
_CONNECTION_CODES: frozenset[int] = frozenset(
    {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC}
)
_AUTH_CODES: frozenset[int] = frozenset(
    {libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_ERR_AUTH_CANCELLED, libvirt.VIR_ERR_AUTH_UNAVAILABLE}
)
#: what the same request would meet again: a refused definition, an unknown name, a missing feature
_PERMANENT_CODES: frozenset[int] = _AUTH_CODES | frozenset(
    {
        libvirt.VIR_ERR_XML_ERROR,
        libvirt.VIR_ERR_XML_DETAIL,
        libvirt.VIR_ERR_XML_INVALID_SCHEMA,
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
        libvirt.VIR_ERR_NO_SUPPORT,
        libvirt.VIR_ERR_INVALID_ARG,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
        libvirt.VIR_ERR_NO_SECRET,
    }
)
_TIMEOUT_CODES: frozenset[int] = frozenset({libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_AGENT_UNRESPONSIVE})
#: a failed start that may well succeed later: the host is short of memory, or another program took the
#: forwarded port between its reservation and QEMU's bind
_PASSING_TROUBLE = ("Cannot allocate memory", "Address already in use", "host forwarding", "temporarily unavailable")


class _Details(Protocol):
    """What a ``libvirtError`` tells besides its message (the binding has no type annotations)."""

    def get_error_code(self) -> int | None: ...

    def get_error_domain(self) -> int | None: ...


def code_of(exc: Exception) -> int | None:
    """libvirt's error number (``VIR_ERR_*``), or None for an exception that is not libvirt's."""
    if not isinstance(exc, LibvirtError):
        return None
    return cast(_Details, exc).get_error_code()


def is_no_domain(exc: Exception) -> bool:
    return code_of(exc) == NO_DOMAIN


def connection_lost(exc: Exception) -> bool:
    """True when ``exc`` says the connection to the daemon failed, rather than the request."""
    if not isinstance(exc, LibvirtError) or code_of(exc) in _AUTH_CODES:
        return False
    return code_of(exc) in _CONNECTION_CODES or cast(_Details, exc).get_error_domain() == _FROM_RPC


def translate(exc: Exception, doing: str, *, permanent_by_default: bool = False) -> ProviderError:
    """The ProviderError for a libvirt failure while ``doing`` something.

    ``permanent_by_default`` is for a call whose failures are almost always the request's fault
    (starting a domain just defined: a kernel QEMU cannot load, a bridge that does not exist), so
    that only a lost connection, a time-out or a passing shortage stays worth retrying.
    """
    message = f"libvirt: {doing}: {exc}"
    code = code_of(exc)
    if code in _TIMEOUT_CODES:
        return ProviderTimeout(message)
    if connection_lost(exc):
        return ProviderError(message)
    if code in _PERMANENT_CODES:
        return PermanentProviderError(message)
    if permanent_by_default and code is not None and not any(hint in str(exc) for hint in _PASSING_TROUBLE):
        return PermanentProviderError(message)
    return ProviderError(message)
