"""Marks each test by the real system it needs (vm, browser, simulator, chaos, compat; all of them `slow`), and
under CI turns a skip into a failure unless the test is listed in ``CANNOT_RUN_HERE``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

#: a fixture a test uses -> the kind of real system behind it
FIXTURE_KINDS = {
    "browser": "browser",
    "page": "browser",
    "vcsim": "simulator",
    "vcsim_binary": "simulator",
    "moto_server": "simulator",
    "test_guest": "vm",
    "qemu_state_dir": "vm",
    "libvirtd": "vm",
}
#: a contract-suite parameter naming a real provider -> its kind
PROVIDER_KINDS = {"libvirt": "vm", "qemu": "vm", "vsphere": "simulator", "ec2": "simulator"}
#: a folder under tests/ -> the kind of every test in it
FOLDER_KINDS = {"chaos": "chaos", "compat": "compat"}
KINDS = sorted({*FIXTURE_KINDS.values(), *FOLDER_KINDS.values()})

#: the one list of tests that cannot run on this project's machines, by node id prefix, with the reason;
#: every other skip under CI is a failure (a skipped test for a missing dependency is a gap, not a pass)
CANNOT_RUN_HERE: dict[str, str] = {}


def kinds_of(item: pytest.Item) -> set[str]:
    fixtures = set(getattr(item, "fixturenames", ()))
    kinds = {kind for fixture, kind in FIXTURE_KINDS.items() if fixture in fixtures}
    kinds |= {kind for folder, kind in FOLDER_KINDS.items() if folder in item.path.parts}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        kinds |= {kind for name, kind in PROVIDER_KINDS.items() if name in callspec.id}
    return kinds


def pytest_configure(config: pytest.Config) -> None:
    for kind in KINDS:
        config.addinivalue_line("markers", f"{kind}: needs a real {kind} (implies slow)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kinds = kinds_of(item)
        for kind in sorted(kinds):
            item.add_marker(kind)
        if kinds:
            item.add_marker("slow")


def allowed_to_skip(nodeid: str) -> bool:
    return any(nodeid.startswith(prefix) for prefix in CANNOT_RUN_HERE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and os.environ.get("CI")) or allowed_to_skip(item.nodeid):
        return
    if getattr(report, "wasxfail", None) is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI, which must run every test: {reason}\n"
        "(install what it needs in scripts/ensure-system-deps.sh or pyproject.toml, "
        "or list it with its reason in tests/support/test_kinds.py CANNOT_RUN_HERE)"
    )
