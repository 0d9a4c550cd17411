"""Client verbs of the ``vmpooler`` command, in the spirit of vmfloaty's ``floaty``.

    vmpooler get debian-12=2 centos       vmpooler list [--active]      vmpooler query HOST
    vmpooler modify HOST --lifetime 4 --tag team=qa                     vmpooler delete HOST... | --all
    vmpooler snapshot HOST                vmpooler revert HOST ID       vmpooler disk HOST SIZE_GB
    vmpooler status
    vmpooler token get|list|status|delete vmpooler ondemand debian=2 --wait

Every verb takes ``--url``/``--token``/``--user``/``--service`` (see :mod:`vmpooler.cli.client_config`),
``--json`` for machine-readable output and ``--debug`` for tracebacks. Output is a Rich table on a
terminal and plain lines otherwise. Exit codes: 0 ok, 1 the API refused, 2 usage or configuration,
3 the server cannot be reached.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vmpooler.cli.client_session import (
    DebugOpt,
    JsonOpt,
    ServiceOpt,
    SpecArg,
    TokenOpt,
    UrlOpt,
    UserOpt,
    emit,
    parse_specs,
    session,
    table,
    text,
    vm_rows,
)
from vmpooler.cli.client_tokens import token_app
from vmpooler.client import Client, RequestStatus
from vmpooler.errors import ApiError


def get(
    pools: SpecArg,
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check out ready VMs, all or nothing: `vmpooler get debian-12=2 centos`."""
    wanted = parse_specs(pools)
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        vms = client.checkout(wanted)
        emit(
            ctx,
            [vm.as_dict() for vm in vms],
            lambda: [vm.fqdn for vm in vms],
            lambda: table("hostname", "fqdn", "pool", rows=vm_rows(vms)),
        )


def list_(
    active: Annotated[bool, typer.Option("--active", help="my running VMs (by token) instead of the pools")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The pools, or with --active the VMs checked out with your token."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        if not active:
            names = client.pools()
            emit(ctx, names, lambda: names, lambda: table("pool", rows=[[n] for n in names]))
            return
        running = client.token_info(ctx.need_token()).get("vms", {}).get("running", [])
        infos = [client.query(host) for host in running]
        rows = [[i["hostname"], i.get("template"), i.get("state"), i.get("remaining"), _tags(i)] for i in infos]
        emit(
            ctx,
            infos,
            lambda: [i.get("fqdn", i["hostname"]) for i in infos],
            lambda: table("hostname", "pool", "state", "hours left", "tags", rows=rows),
        )


def _tags(info: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in (info.get("tags") or {}).items())


def query(
    host: Annotated[str, typer.Argument(help="hostname, short or fully qualified")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """A VM's details: pool, state, lifetime, tags, snapshots, ..."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        info = client.query(host)
        lines = [f"{k}: {text(v)}" for k, v in info.items()]
        emit(ctx, info, lambda: lines, lambda: table("field", "value", rows=[[k, text(v)] for k, v in info.items()]))


def modify(
    host: Annotated[str, typer.Argument(help="hostname")],
    lifetime: Annotated[int | None, typer.Option("--lifetime", min=1, help="hours, counted from checkout")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="NAME=VALUE, repeatable")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Change a VM's lifetime and/or add tags."""
    tags: dict[str, str] = {}
    for item in tag or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--tag")
        tags[name] = value
    if lifetime is None and not tags:
        raise typer.BadParameter("give --lifetime and/or --tag")
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        client.modify(host, lifetime, tags)
        emit(ctx, {"ok": True, "hostname": host}, lambda: [f"modified {host}"])


def delete(
    hosts: Annotated[list[str] | None, typer.Argument(help="hostnames", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="every VM checked out with my token")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Return VMs to the pool (the manager destroys them)."""
    if not hosts and not all_:
        raise typer.BadParameter("name the VMs to return, or give --all")
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        names = list(hosts or [])
        if all_:
            names += client.token_info(ctx.need_token()).get("vms", {}).get("running", [])
        failed: dict[str, str] = {}
        for name in names:
            try:
                client.delete(name)
            except ApiError as exc:
                failed[name] = str(exc)
        returned = [n for n in names if n not in failed]
        emit(ctx, {"returned": returned, "failed": failed}, lambda: [f"returned {n}" for n in returned])
        if failed:
            raise ApiError("; ".join(f"{n}: {why}" for n, why in failed.items()))


def snapshot(
    host: Annotated[str, typer.Argument(help="hostname")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Queue a snapshot of a VM; prints its id."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        sid = client.snapshot(host)
        emit(ctx, {"hostname": host, "snapshot": sid}, lambda: [sid])


def revert(
    host: Annotated[str, typer.Argument(help="hostname")],
    snapshot_id: Annotated[str, typer.Argument(help="the id `vmpooler snapshot` printed")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Queue a revert of a VM to one of its snapshots."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        client.revert(host, snapshot_id)
        emit(ctx, {"ok": True, "hostname": host, "snapshot": snapshot_id}, lambda: [f"reverting {host}"])


def disk(
    host: Annotated[str, typer.Argument(help="hostname")],
    size_gb: Annotated[int, typer.Argument(min=1, help="size of the new disk, in GB")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Queue adding a disk to a VM; prints the disk as the API records it (+8gb)."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        added = client.add_disk(host, size_gb)
        emit(ctx, {"hostname": host, "disk": added}, lambda: [added])


def status(
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The service's health and every pool's ready/running/pending VMs."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        body = client.status()
        pools: dict[str, dict[str, Any]] = body.get("pools", {})
        health = body.get("status", {})
        rows = [[name, p.get("ready"), p.get("max"), p.get("running"), p.get("pending")] for name, p in pools.items()]
        emit(
            ctx,
            body,
            lambda: [str(health.get("message", ""))] + [f"{r[0]} ready={r[1]}/{r[2]} running={r[3]}" for r in rows],
            lambda: table("pool", "ready", "size", "running", "pending", rows=rows, title=health.get("message")),
        )


def summary(
    from_: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default: today)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD (default: today)")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Clones, boots and tags per day, from the history the service keeps."""
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        body = client.summary(from_, to)
        rows = [
            [
                day.get("date"),
                day.get("clone", {}).get("count", {}).get("total", 0),
                day.get("clone", {}).get("duration", {}).get("average", 0),
                day.get("boot", {}).get("count", {}).get("total", 0),
                day.get("boot", {}).get("duration", {}).get("average", 0),
            ]
            for day in body.get("daily", [])
        ]
        emit(
            ctx,
            body,
            lambda: [f"{r[0]} clones={r[1]} clone_avg_s={r[2]} boots={r[3]} boot_avg_s={r[4]}" for r in rows],
            lambda: table("day", "clones", "avg clone s", "boots", "avg boot s", rows=rows, title="summary"),
        )


def ondemand(
    pools: SpecArg,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the VMs are ready, showing progress")] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most")] = 600.0,
    interval: Annotated[float, typer.Option(help="seconds between polls while waiting")] = 1.0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    service: ServiceOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Ask for VMs to be provisioned on demand; with --wait, until they are ready."""
    wanted = parse_specs(pools)
    with session(url, token, user, service, as_json, debug) as ctx, ctx.client() as client:
        rid = client.request(wanted)
        if not wait:
            emit(ctx, {"request_id": rid}, lambda: [rid])
            return
        done = _wait_for(client, rid, wanted, timeout, interval)
        if not done.ready:
            raise ApiError(f"on-demand request {rid}: {done.message}")
        emit(
            ctx,
            done.as_dict(),
            lambda: [vm.fqdn for vm in done.vms],
            lambda: table("hostname", "fqdn", "pool", rows=vm_rows(done.vms), title=f"request {rid}"),
        )


def _wait_for(client: Client, rid: str, wanted: dict[str, int], timeout: float, interval: float) -> RequestStatus:
    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        tasks = {name: progress.add_task(name, total=n) for name, n in wanted.items()}
        while True:
            current = client.request_status(rid)
            if current.finished:
                return current
            for name, counts in current.pending.items():
                if name in tasks:
                    progress.update(tasks[name], completed=counts.get("ready", 0))
            if time.monotonic() > deadline:
                raise ApiError(
                    f"on-demand request {rid} is not ready after {timeout:g}s; it goes on, poll or cancel it"
                )
            time.sleep(interval)


def register(app: typer.Typer) -> None:
    """Add the client verbs to the ``vmpooler`` command."""
    for verb in (get, query, modify, delete, snapshot, revert, disk, status, summary, ondemand):
        app.command(verb.__name__)(verb)
    app.command("list")(list_)
    app.add_typer(token_app, name="token")


__all__ = ["register"]
