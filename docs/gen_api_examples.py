"""Capture the real request/reply examples shown in docs/API.md by running the service.

    .venv/bin/python docs/gen_api_examples.py                  # print every example as markdown
    .venv/bin/python docs/gen_api_examples.py --write docs/API.md   # refresh the examples in place

It starts two private ``redis-server`` processes on loopback and two services:

* the main one, ``vmpooler serve`` (API + manager), with three dummy-provider pools, a DNS domain,
  ``:auth: provider: dummy`` (any user whose password differs from the name passes),
  ``experimental_features: true``, ``vm_lifetime_auth: 2``, a lifetime limit and a ``:tagfilter:``;
* a second, ``vmpooler api`` alone, with none of that and rate limiting on, to show what a server
  without ``:auth:`` or ``experimental_features`` answers and what a 429 looks like.

It waits for the pools to fill, runs every example with httpx (sending what the shown ``curl``
command sends: ``-d`` posts the JSON text as form data), and records method, path, body, status,
notable headers and the exact reply. The real port is shown as 4567. Everything it started is
stopped on exit, also on error or Ctrl-C. Nothing leaves 127.0.0.1; the run takes about 30 s (at most 240 s).

In docs/API.md an example is a block between ``<!-- example: ID -->`` and ``<!-- /example -->``;
``--write`` replaces each such block's content with a fresh capture and fails on an unknown ID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VMPOOLER = ROOT / ".venv" / "bin" / "vmpooler"
SHOWN_BASE = "http://127.0.0.1:4567"
USER, PASSWORD = "alice", "s3cr3t"
OTHER_USER, OTHER_PASSWORD = "bob", "hunter2"
DEADLINE_SECONDS = 240  # the whole run, whatever happens
#: reply headers worth showing (the rest, Date, Server, Content-Length, is routine)
SHOWN_HEADERS = {
    "content-type": "Content-Type",
    "www-authenticate": "WWW-Authenticate",
    "retry-after": "Retry-After",
    "x-ratelimit-limit": "X-RateLimit-Limit",
    "x-ratelimit-remaining": "X-RateLimit-Remaining",
}

MAIN_CONFIG = """\
---
:providers:
  :dummy:
    ready_delay: 0.5
    createvm_max_time: 0.5
:redis:
  server: 127.0.0.1
  port: {redis_port}
  password: {redis_password}
:dns_configs:
  :example:
    dns_class: dynamic-dns
    domain: vmpooler.example.com
:auth:
  provider: dummy
:tagfilter:
  url: '(.*)\\/'
:config:
  site_name: vmpooler docs
  experimental_features: true
  vm_lifetime: 12
  vm_lifetime_auth: 2
  max_lifetime_upper_limit: 48
  max_ondemand_instances_per_request: 5
  check_loop_delay_min: 0.2
  check_loop_delay_max: 1
:pools:
  - name: debian-12-x86_64
    alias: [debian, debian-12]
    template: templates/debian-12-x86_64
    size: 3
    provider: dummy
    dns_plugin: example
  - name: centos-9-x86_64
    alias: centos
    template: templates/centos-9-x86_64
    size: 2
    provider: dummy
    dns_plugin: example
  - name: win-2022-x86_64
    template: templates/win-2022-x86_64
    size: 1
    provider: dummy
    dns_plugin: example
"""

# no :auth:, experimental_features off, rate limiting on with a tiny checkout allowance
PLAIN_CONFIG = """\
---
:redis:
  server: 127.0.0.1
  port: {redis_port}
:dns_configs:
  :example:
    dns_class: dynamic-dns
    domain: vmpooler.example.com
:config:
  rate_limiting_enabled: true
:rate_limits:
  vm_creation: {{limit: 2, period: 60}}
:pools:
  - name: debian-12-x86_64
    template: templates/debian-12-x86_64
    size: 0
    provider: dummy
    dns_plugin: example
"""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from vmpooler.store.embedded import redis_server_binary

    return redis_server_binary()


class Processes:
    """Every child this script starts, stopped (by its own pid) on exit in reverse order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        # a clean environment: REDIS_SERVER, TASK_LIMIT, ... would override the YAML
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        with open(self.workdir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        self.children.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        for _, proc in reversed(self.children):
            self.stop(proc)

    def log_of(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")


def start_redis(procs: Processes, name: str, password: str | None = None) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    data = procs.workdir / name
    data.mkdir()
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", ""]
    args += ["--appendonly", "no", "--daemonize", "no"]
    if password:
        args += ["--requirepass", password]
    proc = procs.start(name, args)
    wait_for_port(port, proc)
    return port, proc


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until something listens on ``port``; fails at once when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")


# --------------------------------------------------------------------------- examples

#: the parts of /status shown (boot and clone are cut: they look like /summary's)
STATUS_BLOCKS = ('"capacity":', '"pools":', '"queue":', '"status":')


@dataclass
class Example:
    id: str
    method: str
    path: str
    status: int
    reason: str
    headers: dict[str, str]
    body: str
    curl: str
    note: str = ""
    max_lines: int | None = None
    max_chars: int | None = None
    #: after the first ``max_lines`` lines, also show the JSON block opening at each of these lines
    blocks: tuple[str, ...] = ()

    def shown_body(self) -> list[str]:
        text = self.body.rstrip("\n")
        if self.max_chars is not None and len(text) > self.max_chars:
            text = f"{text[: self.max_chars]}… ({len(text) - self.max_chars} more characters cut here)"
        lines = text.split("\n")
        if self.max_lines is None or len(lines) <= self.max_lines:
            return lines
        keep = set(range(self.max_lines))
        if self.blocks:
            keep.add(len(lines) - 1)  # the closing brace
        for opening in self.blocks:
            start = next(i for i, line in enumerate(lines) if line.strip().startswith(opening))
            indent = len(lines[start]) - len(lines[start].lstrip())
            end = start + 1
            while end < len(lines) and len(lines[end]) - len(lines[end].lstrip()) > indent:
                end += 1
            keep |= set(range(start, min(end + 1, len(lines))))
        shown: list[str] = []
        cut = 0
        for i, line in enumerate(lines):
            if i in keep:
                if cut:
                    shown.append(f"… ({cut} line{'s' if cut > 1 else ''} cut here)")
                    cut = 0
                shown.append(line)
            else:
                cut += 1
        if cut:
            shown.append(f"… ({cut} more line{'s' if cut > 1 else ''} cut here)")
        return shown

    def markdown(self) -> str:
        lines = [f"$ {self.curl}", f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        lines.append("")
        body = self.shown_body()
        lines += body
        out = "```console\n" + "\n".join(lines) + "\n```"
        return f"{self.note}\n\n{out}" if self.note else out


@dataclass
class Client:
    base: str
    examples: dict[str, Example] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))
    #: a VM that is ready (not checked out): the API lists none, so the caller reads Redis
    ready_vm: Callable[[], str | None] = lambda: None
    openapi: dict[str, Any] = field(default_factory=dict)

    def call(
        self,
        id: str,
        method: str,
        path: str,
        *,
        data: Any = None,
        token: str | None = None,
        user: tuple[str, str] | None = None,
        expect: int | None = None,
        shown_data: str | None = None,
        note: str = "",
        max_lines: int | None = None,
        max_chars: int | None = None,
        blocks: tuple[str, ...] = (),
        record: bool = True,
    ) -> httpx.Response:
        """Send what ``curl [-X M] [-u u:p] [-H X-AUTH-TOKEN:] [-d DATA] URL`` sends and record the reply."""
        headers: dict[str, str] = {}
        content: bytes | None = None
        curl = ["curl", "-i"]
        if method != ("POST" if data is not None else "GET"):
            curl += ["-X", method]
        if user is not None:
            curl += ["-u", f"{user[0]}:{user[1]}"]
        if token is not None:
            headers["X-AUTH-TOKEN"] = token
            curl += ["-H", f"X-AUTH-TOKEN: {token}"]
        if data is not None:
            text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
            content = text.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
            curl += ["-d", shown_data if shown_data is not None else text]
        reply = self.http.request(method, self.base + path, headers=headers, content=content, auth=user)
        if expect is not None and reply.status_code != expect:
            raise AssertionError(
                f"{id}: {method} {path} answered {reply.status_code}, not {expect}: {reply.text[:600]}"
            )
        if record:
            if id in self.examples:
                raise ValueError(f"duplicate example id {id}")
            shown = " ".join(shlex.quote(a) if a not in ("-d",) and not a.startswith("@") else a for a in curl)
            self.examples[id] = Example(
                id=id,
                method=method,
                path=path,
                status=reply.status_code,
                reason=reply.reason_phrase,
                headers={SHOWN_HEADERS[k]: v for k, v in reply.headers.items() if k in SHOWN_HEADERS},
                body=reply.text,
                curl=f"{shown} {shlex.quote(SHOWN_BASE + path)}",
                note=note,
                max_lines=max_lines,
                max_chars=max_chars,
                blocks=blocks,
            )
        return reply

    def get_json(self, path: str, **kw: Any) -> Any:
        return self.http.get(self.base + path, **kw).json()


def pools_full(c: Client) -> bool:
    status = c.get_json("/api/v3/status?view=pools")
    return all(p["ready"] >= p["max"] for p in status["pools"].values())


def run_examples(c: Client, plain: Client, stop_redis: Callable[[], None]) -> None:  # noqa: PLR0915
    v3 = "/api/v3"

    def full() -> None:
        wait_until("the pools to fill", lambda: pools_full(c), timeout=60)

    full()

    # ---- tokens -----------------------------------------------------------------------------
    token = c.call("token-create", "POST", f"{v3}/token", user=(USER, PASSWORD), expect=200).json()["token"]
    spare = c.call("token-create-2", "POST", f"{v3}/token", user=(USER, PASSWORD), expect=200, record=False).json()[
        "token"
    ]
    c.call("token-list", "GET", f"{v3}/token", user=(USER, PASSWORD), expect=200)
    c.call("token-create-noauth", "POST", f"{v3}/token", expect=401)
    c.call("token-create-same-password", "POST", f"{v3}/token", user=("carol", "carol"), expect=401)
    c.call("token-list-none", "GET", f"{v3}/token", user=("carol", "pw"), expect=404)
    bob = c.call("token-create-bob", "POST", f"{v3}/token", user=(OTHER_USER, OTHER_PASSWORD), record=False).json()[
        "token"
    ]
    c.call("token-delete-others", "DELETE", f"{v3}/token/{bob}", user=(USER, PASSWORD), expect=403)
    c.call("token-delete", "DELETE", f"{v3}/token/{spare}", user=(USER, PASSWORD), expect=200)
    c.call("token-delete-unknown", "DELETE", f"{v3}/token/{spare}", user=(USER, PASSWORD), expect=404)
    c.call("token-info-unknown", "GET", f"{v3}/token/{spare}", expect=404)

    # ---- versions: the same checkout in v3 and unversioned ---------------------------------------
    c.call("versions-checkout-v3", "POST", f"{v3}/vm", data={"debian": "2"}, expect=200)
    full()
    unversioned = c.call("versions-checkout-v1", "POST", "/vm", data={"debian": "2"}, expect=200).json()
    short = unversioned["debian"]["hostname"][0]
    c.call("versions-query-v3", "GET", f"{v3}/vm/{short}", expect=200)
    c.call("versions-query-v1", "GET", f"/vm/{short}", expect=200)
    c.call("versions-checkout-v2", "POST", "/api/v2/vm/win-2022-x86_64", expect=200)
    full()
    c.call("versions-checkout-apiv1", "POST", "/api/v1/vm/win-2022-x86_64", expect=200)
    full()

    # ---- VMs ---------------------------------------------------------------------------------
    c.call("vm-list", "GET", f"{v3}/vm", expect=200)
    c.call("vm-checkout", "POST", f"{v3}/vm", data={"debian": "2", "centos-9-x86_64": "1"}, expect=200)
    full()
    c.call("vm-checkout-url", "POST", f"{v3}/vm/debian+debian+centos", data="--url", expect=200)
    full()
    mine = c.call("vm-checkout-token", "POST", f"{v3}/vm/debian-12-x86_64", token=token, expect=200).json()
    host = mine["debian-12-x86_64"]["hostname"]
    name = host.split(".", 1)[0]
    full()
    c.call("vm-checkout-empty", "POST", f"{v3}/vm", expect=400)
    c.call("vm-checkout-badjson", "POST", f"{v3}/vm", data='{"debian": 1', expect=400)
    c.call("vm-checkout-notobject", "POST", f"{v3}/vm", data='["debian"]', expect=400)
    c.call("vm-checkout-count", "POST", f"{v3}/vm", data={"debian": "0"}, expect=400)
    c.call("vm-checkout-unknown", "POST", f"{v3}/vm/fedora-40", expect=404)
    c.call("vm-checkout-short", "POST", f"{v3}/vm", data={"debian": "1", "win-2022-x86_64": "2"}, expect=503)
    c.call("vm-checkout-badtoken", "POST", f"{v3}/vm/debian", token="not-a-real-token", expect=401)
    big = json.dumps({"debian": "1", "padding": "x" * 70_000})
    c.call("vm-checkout-toolarge", "POST", f"{v3}/vm", data=big, shown_data="@big.json", expect=413)

    c.call("vm-query", "GET", f"{v3}/vm/{host}", expect=200)
    c.call("vm-query-unknown", "GET", f"{v3}/vm/no-such-vm", expect=404)
    c.call("vm-query-badname", "GET", f"{v3}/vm/-bad_name", expect=400)

    c.call("vm-put-lifetime", "PUT", f"{v3}/vm/{host}", data={"lifetime": "48"}, token=token, expect=200)
    url = "https://ci.example.com/job/1234/console.html"
    c.call("vm-put-tags", "PUT", f"{v3}/vm/{host}", data={"tags": {"url": url, "team": "qa"}}, token=token, expect=200)
    c.call("vm-put-notoken", "PUT", f"{v3}/vm/{host}", data={"lifetime": "4"}, expect=401)
    c.call(
        "vm-put-invalid", "PUT", f"{v3}/vm/{host}", data={"lifetime": "49", "colour": "red"}, token=token, expect=400
    )

    # ---- VM operations -----------------------------------------------------------------------
    snap = c.call("vm-snapshot", "POST", f"{v3}/vm/{host}/snapshot", token=token, expect=202).json()[name]["snapshot"]
    c.call("vm-disk", "POST", f"{v3}/vm/{host}/disk/8", token=token, expect=202)
    c.call("vm-disk-bad", "POST", f"{v3}/vm/{host}/disk/8gb", token=token, expect=400)
    c.call("vm-snapshot-notoken", "POST", f"{v3}/vm/{host}/snapshot", expect=401)
    wait_until(
        "the manager to take the snapshot and add the disk",
        lambda: {"snapshots", "disk"} <= set(c.get_json(f"{v3}/vm/{host}")[name]),
    )
    c.call("vm-revert", "POST", f"{v3}/vm/{host}/snapshot/{snap}", token=token, expect=202)
    c.call("vm-revert-unknown", "POST", f"{v3}/vm/{host}/snapshot/0123456789abcdef", token=token, expect=404)
    c.call("vm-query-after", "GET", f"{v3}/vm/{host}", expect=200)
    c.call("token-info", "GET", f"{v3}/token/{token}", expect=200)

    bobs = c.call("vm-checkout-bob", "POST", f"{v3}/vm/centos", token=bob, record=False).json()
    bobs_host = bobs["centos"]["hostname"]
    full()
    c.call("vm-delete-others", "DELETE", f"{v3}/vm/{bobs_host}", token=token, expect=403)
    c.call("vm-delete-notoken", "DELETE", f"{v3}/vm/{host}", expect=401)
    c.call("vm-delete", "DELETE", f"{v3}/vm/{host}", token=token, expect=200)
    c.call("vm-delete-again", "DELETE", f"{v3}/vm/{host}", token=token, expect=404)
    ready_vm = wait_until("a ready VM", c.ready_vm)
    c.call("vm-delete-ready", "DELETE", f"{v3}/vm/{ready_vm}", expect=404)

    # ---- on-demand ---------------------------------------------------------------------------
    body = {"debian": "1", "centos-9-x86_64": "1", "request_id": "build-1234"}
    c.call("od-create", "POST", f"{v3}/ondemandvm", data=body, token=token, expect=201)
    c.call("od-status-pending", "GET", f"{v3}/ondemandvm/build-1234", expect=202)
    wait_until("the on-demand request", lambda: c.http.get(f"{c.base}{v3}/ondemandvm/build-1234").status_code == 200)
    c.call("od-status-ready", "GET", f"{v3}/ondemandvm/build-1234", expect=200)
    c.call("od-status-ready-v1", "GET", "/ondemandvm/build-1234", expect=200)
    by_url = c.call(
        "od-create-url", "POST", f"{v3}/ondemandvm/win-2022-x86_64+win-2022-x86_64", token=token, expect=201
    )
    second = by_url.json()["request_id"]
    c.call("od-create-duplicate", "POST", f"{v3}/ondemandvm", data=body, token=token, expect=409)
    c.call("od-create-toomany", "POST", f"{v3}/ondemandvm", data={"debian": "6"}, token=token, expect=403)
    c.call("od-create-unknown", "POST", f"{v3}/ondemandvm", data={"fedora-40": "1"}, token=token, expect=404)
    c.call("od-create-notoken", "POST", f"{v3}/ondemandvm", data={"debian": "1"}, expect=401)
    c.call("od-delete-others", "DELETE", f"{v3}/ondemandvm/build-1234", token=bob, expect=403)
    c.call("od-delete", "DELETE", f"{v3}/ondemandvm/build-1234", token=token, expect=200)
    c.call("od-delete-again", "DELETE", f"{v3}/ondemandvm/build-1234", token=token, expect=200)
    c.call("od-status-deleted", "GET", f"{v3}/ondemandvm/build-1234", expect=200)
    c.call("od-status-unknown", "GET", f"{v3}/ondemandvm/no-such-request", expect=404)
    # until a request is served, the VMs cloned for it count as its pool's ready VMs: let it settle
    wait_until(
        "the second on-demand request", lambda: c.http.get(f"{c.base}{v3}/ondemandvm/{second}").status_code == 200
    )
    full()

    # ---- status --------------------------------------------------------------------------------
    c.call("status", "GET", f"{v3}/status", expect=200, max_lines=1, blocks=STATUS_BLOCKS)
    c.call("status-view", "GET", f"{v3}/status?view=capacity,queue", expect=200)
    c.call("status-view-empty", "GET", f"{v3}/status?view=", expect=200)
    c.call("poolstat", "GET", f"{v3}/poolstat?pool=debian,win-2022-x86_64", expect=200)
    c.call("poolstat-none", "GET", f"{v3}/poolstat", expect=200)
    c.call("totalrunning", "GET", f"{v3}/totalrunning", expect=200)
    c.call("summary", "GET", f"{v3}/summary", expect=200)
    c.call("summary-section", "GET", f"{v3}/summary/tag", expect=200)
    today = datetime.now(UTC).date()
    days = f"from={today - timedelta(days=1)}&to={today}"
    c.call("summary-key", "GET", f"{v3}/summary/boot/duration?{days}", expect=200)
    c.call("summary-baddate", "GET", f"{v3}/summary?from=yesterday", expect=400)
    c.call("summary-badrange", "GET", f"{v3}/summary?from=2026-01-02&to=2026-01-01", expect=400)
    c.call("summary-unknown", "GET", f"{v3}/summary/ready", expect=404)

    # ---- runtime configuration -----------------------------------------------------------------
    c.call("config", "GET", f"{v3}/config", expect=200, max_lines=24)
    c.call("full-config", "GET", f"{v3}/full_config", expect=200, max_lines=8, blocks=('"redis":', '"auth":'))
    c.call("cfg-poolsize", "POST", f"{v3}/config/poolsize", data={"win-2022-x86_64": "2"}, token=token, expect=201)
    c.call("cfg-poolsize-same", "POST", f"{v3}/config/poolsize", data={"win-2022-x86_64": "2"}, token=token, expect=200)
    c.call(
        "cfg-poolsize-bad",
        "POST",
        f"{v3}/config/poolsize",
        data={"win-2022-x86_64": "-1", "fedora-40": "2"},
        token=token,
        expect=400,
    )
    c.call("cfg-poolsize-notoken", "POST", f"{v3}/config/poolsize", data={"win-2022-x86_64": "2"}, expect=401)
    c.call("cfg-poolsize-badjson", "POST", f"{v3}/config/poolsize", data="{win: 2}", token=token, expect=400)
    c.call("cfg-poolsize-reset", "DELETE", f"{v3}/config/poolsize/win-2022-x86_64", token=token, expect=201)
    c.call("cfg-poolsize-reset-again", "DELETE", f"{v3}/config/poolsize/win-2022-x86_64", token=token, expect=200)
    c.call("cfg-poolsize-reset-unknown", "DELETE", f"{v3}/config/poolsize/fedora-40", token=token, expect=404)
    template = {"centos-9-x86_64": "templates/centos-9-x86_64-v2"}
    c.call("cfg-template", "POST", f"{v3}/config/pooltemplate", data=template, token=token, expect=201)
    c.call("cfg-template-bad", "POST", f"{v3}/config/pooltemplate", data={"fedora-40": "t/f"}, token=token, expect=400)
    c.call("cfg-template-reset", "DELETE", f"{v3}/config/pooltemplate/centos-9-x86_64", token=token, expect=201)
    target = {"debian-12-x86_64": "cluster-b"}
    c.call("cfg-clonetarget", "POST", f"{v3}/config/clonetarget", data=target, token=token, expect=201)
    c.call("cfg-clonetarget-bad", "POST", f"{v3}/config/clonetarget", data={"fedora-40": "x"}, token=token, expect=400)
    c.call("cfg-poolreset", "POST", f"{v3}/poolreset", data={"win-2022-x86_64": "1"}, token=token, expect=201)
    c.call("cfg-poolreset-bad", "POST", f"{v3}/poolreset", data={"fedora-40": "1"}, token=token, expect=400)
    c.call("cfg-poolreset-empty", "POST", f"{v3}/poolreset", token=token, expect=400)

    # ---- dashboard feeds and history ---------------------------------------------------------------
    c.call("dash-pool", "GET", "/dashboard/stats/vmpooler/pool?history=1", expect=200, max_lines=24)
    c.call("dash-running", "GET", "/dashboard/stats/vmpooler/running", expect=200)
    c.call("dash-users", "GET", "/dashboard/stats/vmpooler/users", expect=200)
    c.call("dash-feed", "GET", "/dashboard/feed?pool=win-2022-x86_64", expect=200, max_lines=40)
    c.call("history", "GET", f"{v3}/history?pool=debian-12-x86_64&range=1h", expect=200, max_lines=30)
    c.call("history-bad", "GET", f"{v3}/history?range=2y", expect=400)

    # ---- docs, index, unknown routes -------------------------------------------------------------
    c.call("index", "GET", "/", expect=302)
    c.openapi = c.call("openapi", "GET", "/openapi.json", expect=200, max_chars=160).json()
    c.call("docs-page", "GET", "/api/docs", expect=200, max_lines=6)
    c.call("no-route", "GET", f"{v3}/dashboard", expect=404)
    c.call("wrong-method", "PATCH", f"{v3}/vm", expect=405)

    # ---- the plain server: no :auth:, no experimental_features, rate limited ------------------------
    plain.call("plain-token", "GET", f"{v3}/token", user=(USER, PASSWORD), expect=404)
    plain.call("plain-config", "POST", f"{v3}/config/poolsize", data={"debian-12-x86_64": "1"}, expect=405)
    plain.call("plain-ondemand", "POST", f"{v3}/ondemandvm", data={"debian-12-x86_64": "1"}, expect=201)
    plain.call("plain-checkout-1", "POST", f"{v3}/vm/debian-12-x86_64", record=False, expect=503)
    plain.call("plain-checkout-empty-pool", "POST", f"{v3}/vm/debian-12-x86_64", expect=503)
    plain.call("plain-ratelimited", "POST", f"{v3}/vm/debian-12-x86_64", expect=429)

    plain.call("plain-healthcheck", "GET", "/healthcheck", expect=503)

    # ---- health and metrics, last: it stops the main server's Redis ---------------------------------
    c.call("healthcheck", "GET", "/healthcheck", expect=200)
    c.call("prometheus", "GET", "/prometheus", expect=200, max_lines=12)
    stop_redis()
    c.call("healthcheck-down", "GET", "/healthcheck", expect=503)
    c.call("vm-checkout-redis-down", "POST", f"{v3}/vm/debian", expect=503)


# --------------------------------------------------------------------------- output


def render(examples: dict[str, Example]) -> str:
    return "\n\n".join(f"<!-- example: {e.id} -->\n{e.markdown()}\n<!-- /example -->" for e in examples.values())


BLOCK = re.compile(r"<!-- example: ([\w-]+) -->\n.*?<!-- /example -->", re.DOTALL)


def write_into(doc: Path, examples: dict[str, Example]) -> None:
    text = doc.read_text()
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in examples:
            raise KeyError(f"{doc}: no captured example {key!r}")
        used.add(key)
        return f"<!-- example: {key} -->\n{examples[key].markdown()}\n<!-- /example -->"

    doc.write_text(BLOCK.sub(fill, text))
    unused = sorted(set(examples) - used)
    print(f"wrote {len(used)} examples into {doc}", file=sys.stderr)
    if unused:
        print(f"captured but not shown: {', '.join(unused)}", file=sys.stderr)


HEADING = re.compile(r"^#{2,4} `(GET|POST|PUT|DELETE) ([^`]+)`", re.MULTILINE)


def missing_routes(doc: str, openapi: dict[str, Any]) -> list[str]:
    """Routes /openapi.json lists (any version, shown without the version prefix) that have no
    ``### `METHOD /path` `` heading in the document."""
    documented = {(m, p) for m, p in HEADING.findall(doc)}
    wanted = set()
    for path, operations in openapi.get("paths", {}).items():
        bare = re.sub(r"^/api/v[123]", "", path) or "/"
        wanted |= {(method.upper(), bare) for method in operations}
    return sorted(f"{m} {p}" for m, p in wanted - documented)


def capture(workdir: Path) -> tuple[dict[str, Example], dict[str, Any]]:
    """Start both services, run every example, stop everything; the examples and /openapi.json."""
    procs = Processes(workdir)
    try:
        redis_password = "docs-only-redis-password"
        redis_port, redis = start_redis(procs, "redis-main", redis_password)
        plain_redis_port, _ = start_redis(procs, "redis-plain")
        main_cfg, plain_cfg = workdir / "main.yaml", workdir / "plain.yaml"
        main_cfg.write_text(MAIN_CONFIG.format(redis_port=redis_port, redis_password=redis_password))
        plain_cfg.write_text(PLAIN_CONFIG.format(redis_port=plain_redis_port))
        main_port, plain_port = free_port(), free_port()
        listen = ["--host", "127.0.0.1", "--port"]
        serve = procs.start("serve", [str(VMPOOLER), "serve", "-c", str(main_cfg), *listen, str(main_port)])
        api = procs.start("api", [str(VMPOOLER), "api", "-c", str(plain_cfg), *listen, str(plain_port)])
        wait_for_port(main_port, serve)
        wait_for_port(plain_port, api)

        import redis as redis_client  # the service's own dependency

        peek = redis_client.Redis(host="127.0.0.1", port=redis_port, password=redis_password, decode_responses=True)

        def ready_vm() -> str | None:
            members = peek.smembers("vmpooler__ready__win-2022-x86_64")
            return str(sorted(members)[0]) if members else None

        c = Client(f"http://127.0.0.1:{main_port}", ready_vm=ready_vm)
        plain = Client(f"http://127.0.0.1:{plain_port}")
        try:
            run_examples(c, plain, lambda: procs.stop(redis))
        except Exception:
            for name in ("serve", "api"):
                print(f"----- {name} log -----\n{procs.log_of(name)[-4000:]}", file=sys.stderr)
            raise
        finally:
            peek.close()
            c.http.close()
            plain.http.close()
        return {**c.examples, **plain.examples}, c.openapi
    finally:
        procs.stop_all()


def _too_long(*_: object) -> None:
    raise TimeoutError(f"the run took longer than {DEADLINE_SECONDS}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--write", type=Path, help="refresh the example blocks in this markdown file")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _too_long)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwinds, so the children are stopped
    signal.alarm(DEADLINE_SECONDS)
    try:
        with tempfile.TemporaryDirectory(prefix="vmpooler-docs-") as tmp:
            examples, openapi = capture(Path(tmp))
    finally:
        signal.alarm(0)

    if args.write is None:
        print(render(examples))
        return 0
    write_into(args.write, examples)
    missing = missing_routes(args.write.read_text(), openapi)
    if missing:
        print(f"{args.write} lacks a section for: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{args.write} has a section for every route in /openapi.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
