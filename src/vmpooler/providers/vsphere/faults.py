"""Translates pyVmomi faults and connection errors into vmpooler's ProviderError family."""

from __future__ import annotations

import ssl
from http.client import HTTPException

from pyVmomi import vim, vmodl

from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout

__all__ = ["SESSION_LOST", "fault_message", "translate"]

#: errors after which the session is re-established and the call tried once more
SESSION_LOST = (vim.fault.NotAuthenticated, OSError, HTTPException)

# faults no retry can cure: the configuration or the permissions must change first
_PERMANENT = (
    vim.fault.InvalidLogin,
    vim.fault.NoPermission,
    vim.fault.InvalidName,
    vmodl.fault.InvalidArgument,
    vmodl.fault.NotSupported,
)


def fault_message(fault: BaseException) -> str:
    """vCenter's own words for a fault (its ``localizedMessage``), else the fault's type."""
    message = getattr(fault, "msg", None)
    if isinstance(fault, vmodl.MethodFault):
        kind = type(fault).__name__
        # a simulator or an old host may send only the fault type's name as its message
        if not message or message.strip("*").endswith(kind.rsplit(".", 1)[-1]):
            return kind
        return str(message)
    return str(message or fault) or type(fault).__name__


def translate(exc: BaseException, doing: str) -> ProviderError:
    """The ProviderError to raise ``from exc`` for a failure while ``doing`` something."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentProviderError(
            f"vSphere: {doing}: vCenter's certificate is not trusted ({exc.verify_message or exc}); "
            "install its CA, or set insecure: true"
        )
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(f"vSphere: {doing}: no answer from vCenter ({exc or 'timed out'})")
    if isinstance(exc, OSError | HTTPException):
        return ProviderError(f"vSphere: {doing}: cannot reach vCenter: {exc or type(exc).__name__}")
    if isinstance(exc, vim.fault.NotAuthenticated):  # a NoPermission, but logging in again may cure it
        return ProviderError(f"vSphere: {doing}: vCenter no longer knows the session: {fault_message(exc)}")
    if isinstance(exc, _PERMANENT):
        return PermanentProviderError(f"vSphere: {doing}: {fault_message(exc)}")
    return ProviderError(f"vSphere: {doing}: {fault_message(exc)}")
