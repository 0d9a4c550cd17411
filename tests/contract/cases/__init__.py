"""Provider cases for the contract suite: every module here defines ``CASES``, found automatically.

A case is an async context manager factory ``(request, tmp_path) -> ProviderCase``. It may ask for
session fixtures (a simulator, a hypervisor) with ``request.getfixturevalue`` and should skip with a
reason when the real thing cannot run on this machine. Adding a provider means adding one module;
nothing else in the suite changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from vmpooler.domain import PoolTarget
from vmpooler.providers.base import Provider


@dataclass
class ProviderCase:
    provider: Provider
    pool: PoolTarget
    ready_timeout: float = 10.0
    """How long a created VM may take to become ready (a real guest boots in seconds)."""
    bad_template: str = "no-such-template"
    """A template the provider must refuse for good (it does not exist there)."""


CaseFactory = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[ProviderCase]]


def all_cases() -> dict[str, CaseFactory]:
    found: dict[str, CaseFactory] = {}
    for module in pkgutil.iter_modules(__path__):
        cases: dict[str, CaseFactory] = getattr(importlib.import_module(f"{__name__}.{module.name}"), "CASES", {})
        duplicate = found.keys() & cases.keys()
        assert not duplicate, f"contract case ids defined twice: {duplicate}"
        found.update(cases)
    return found


__all__ = ["CaseFactory", "ProviderCase", "all_cases"]
