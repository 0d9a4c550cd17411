"""Python clients for the vmpooler API: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

    with Client("http://vmpooler:4567", token="...") as client, client.vm("debian-12") as vm:
        ssh(vm.fqdn)          # the VM is returned when the block ends, even on an exception

Errors are the :mod:`vmpooler.errors` classes: an :class:`~vmpooler.errors.ApiError` subclass for the
reply's status (``NotFound``, ``ServiceUnavailable``, ...) with the server's message, and
:class:`~vmpooler.errors.ServerUnreachable` when the API does not answer.
"""

from vmpooler.client.async_ import AsyncClient
from vmpooler.client.core import VM, PoolSpec, RequestStatus
from vmpooler.client.sync import Client

__all__ = ["VM", "AsyncClient", "Client", "PoolSpec", "RequestStatus"]
