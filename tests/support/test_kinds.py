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

#: modules (or single tests, ``path::name``) that need no VM, browser or simulator but are slow all the same
#: (each starts `vmpooler` as a process, builds the docs or runs a fuzzer): `slow` too, so `make test-fast`
#: stays an inner loop under a minute; `make test` runs them. Chosen from `pytest -m "not slow" --durations=0`.
LONG_RUNNING: dict[str, str] = {
    "tests/integration/test_api_tls.py": "an HTTPS service process per test",
    "tests/integration/test_cli.py": "validate-config and serve as processes",
    "tests/integration/test_cli_admin.py": "operator commands as processes",
    "tests/integration/test_cli_client.py": "client verbs as processes",
    "tests/integration/test_cli_forms.py": "the original's command lines as processes",
    "tests/integration/test_client.py": "the pytest plugin runs a pytest of its own",
    "tests/integration/test_cli_verbs.py::test_ssh_checks_out_from_a_pool_then_runs_ssh": "three CLI processes",
    "tests/integration/test_cli_verbs.py::test_ctrl_c_during_wait_says_how_to_follow_up": "a CLI process, interrupted",
    "tests/integration/test_docs.py": "builds the documentation site",
    "tests/integration/test_manager_probe.py": "a manager process",
    # the three below watch an idle manager for seconds to show it does not poll: time, not work
    "tests/integration/test_manager_wakeups.py::test_idle_pools_cost_no_polling_and_a_checkout_is_refilled_at_once": (
        "6 s of an idle manager"
    ),
    "tests/integration/test_manager_wakeups.py::test_a_quiet_pool_reads_nothing_yet_sees_changes_no_event_announced": (
        "6 s of an idle manager"
    ),
    "tests/integration/test_manager_service_wakeups.py": "6 s of idle task and on-demand loops",
    "tests/integration/test_openapi.py": "schemathesis over every route",
    "tests/integration/test_provider_paths.py": "serve started from other folders",
    "tests/integration/test_security_serve.py": "a service process per test",
    "tests/integration/test_serve.py": "serve filling its pools",
    "tests/integration/test_serve_processes.py": "serve's process tree, killed and restarted",
    "tests/integration/test_state_properties.py": "hypothesis over the store",
    "tests/integration/test_stored_pools.py": "serve processes",
    "tests/integration/test_waiting_processes.py": "two API processes and two managers",
    "tests/integration/test_workers.py": "several API processes",
    "tests/integration/test_webhooks.py::test_dead_letters_are_shown_to_admins_and_redelivered": "retries to a dead "
    "letter, then two CLI processes",
    "tests/integration/test_webhooks.py::test_a_killed_managers_pending_deliveries_are_sent_by_another": "manager "
    "processes, one killed",
    "tests/security/test_bodies.py": "200 MB bodies against a service process",
    "tests/security/test_embedded_redis.py": "serve with its own Redis",
    "tests/security/test_fuzz_bodies.py": "hypothesis over every body",
    "tests/security/test_log_forging.py": "an API service process",
    "tests/security/test_rate_limit_keys.py": "a service process per test",
    "tests/security/test_slow_clients.py": "clients that wait out the server's timeouts",
    "tests/security/test_token_hash.py": "the original and this service side by side",
    "tests/security/test_token_rollover.py": "the original and this service side by side",
}

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


def long_running(item: pytest.Item) -> bool:
    module, _, name = item.nodeid.partition("::")
    return module in LONG_RUNNING or f"{module}::{name.split('[', 1)[0]}" in LONG_RUNNING


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kinds = kinds_of(item)
        for kind in sorted(kinds):
            item.add_marker(kind)
        if kinds or long_running(item):
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
