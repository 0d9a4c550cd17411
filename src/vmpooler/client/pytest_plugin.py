"""A pytest plugin that lends tests VMs from a vmpooler and always gives them back.

Installed with vmpooler (entry point ``pytest11``: ``vmpooler``); it only adds fixtures and a marker, so
it does nothing in a test run that does not use them. Configure it with ``$VMPOOLER_URL`` (default
``http://127.0.0.1:4567``) and ``$VMPOOLER_TOKEN``::

    @pytest.mark.vmpooler("debian-12")
    def test_install(vmpooler_vm):
        vm = vmpooler_vm()              # the marker's pool
        other = vmpooler_vm("centos")   # or name one
        ...                             # both are returned when the test ends, pass or fail
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from vmpooler.client.core import DEFAULT_URL, VM
from vmpooler.client.sync import Client
from vmpooler.errors import NotFound

MARKER = "vmpooler"


class VMFactory:
    """Checks out one VM per call and returns every one of them on :meth:`close`."""

    def __init__(self, client: Client, default_pool: str | None = None) -> None:
        self.client = client
        self.default_pool = default_pool
        self.vms: list[VM] = []

    def __call__(self, pool: str | None = None) -> VM:
        chosen = pool or self.default_pool
        if not chosen:
            raise pytest.UsageError(f"vmpooler_vm needs a pool: call it with one or mark the test @{MARKER}(POOL)")
        (vm,) = self.client.checkout(chosen)
        self.vms.append(vm)
        return vm

    def close(self) -> None:
        """Return every VM; a VM the test already returned is fine, other failures are raised after all tries."""
        failures: list[Exception] = []
        while self.vms:
            vm = self.vms.pop()
            try:
                self.client.delete(vm.fqdn)
            except NotFound:
                pass
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(pool): the pool vmpooler_vm() checks out from by default")


@pytest.fixture
def vmpooler_client() -> Iterator[Client]:
    """A :class:`~vmpooler.client.Client` for ``$VMPOOLER_URL`` with ``$VMPOOLER_TOKEN``."""
    with Client(os.environ.get("VMPOOLER_URL") or DEFAULT_URL, os.environ.get("VMPOOLER_TOKEN") or None) as client:
        yield client


@pytest.fixture
def vmpooler_vm(request: pytest.FixtureRequest, vmpooler_client: Client) -> Iterator[VMFactory]:
    """``vmpooler_vm(pool=None) -> VM``: check out a VM for this test; all are returned at teardown."""
    marker = request.node.get_closest_marker(MARKER)
    default = None
    if marker is not None:
        default = marker.args[0] if marker.args else marker.kwargs.get("pool")
    factory = VMFactory(vmpooler_client, default)
    try:
        yield factory
    finally:
        factory.close()


__all__ = ["VMFactory", "vmpooler_client", "vmpooler_vm"]
