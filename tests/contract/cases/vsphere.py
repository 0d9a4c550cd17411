"""The vSphere provider against vcsim, the vCenter simulator (started once per session)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.contract.cases import CaseFactory, ProviderCase
from tests.support.fixtures.vcsim import Vcsim
from vmpooler.providers.vsphere import VSphereProvider


def _case(linked: bool) -> CaseFactory:
    @asynccontextmanager
    async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
        server: Vcsim = request.getfixturevalue("vcsim")
        provider = VSphereProvider("vsphere", server.options(create_linked_clones=linked))
        # the simulated guest tools report a powered-on VM within a poll or two
        yield ProviderCase(provider, server.pool(), ready_timeout=20)

    return case


CASES: dict[str, CaseFactory] = {"vsphere-vcsim": _case(linked=False), "vsphere-vcsim-linked": _case(linked=True)}
