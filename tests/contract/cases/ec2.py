"""The EC2 provider against moto_server, the AWS API simulator (one server for the session)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.contract.cases import CaseFactory, ProviderCase
from tests.support.fixtures.moto import MotoServer
from vmpooler.domain import PoolTarget
from vmpooler.providers.ec2 import EC2Options, EC2Provider


@asynccontextmanager
async def _moto(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderCase]:
    server: MotoServer = request.getfixturevalue("moto_server")
    provider = EC2Provider("ec2", EC2Options.model_validate(server.provider_options()))
    yield ProviderCase(provider, PoolTarget(name=f"contract-{uuid.uuid4().hex[:8]}", template=server.default_ami))


CASES: dict[str, CaseFactory] = {"ec2-moto": _moto}
