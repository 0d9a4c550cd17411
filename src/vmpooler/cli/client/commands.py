"""Client verbs of the ``vmpooler`` command, in the spirit of vmfloaty's ``floaty``.

    vmpooler get debian-12=2 centos       vmpooler list [FILTER] [--active]   vmpooler query HOST
    vmpooler modify HOST --lifetime 4 --tag team=qa                     vmpooler delete HOST,HOST... | --all
    vmpooler snapshot HOST                vmpooler revert HOST ID       vmpooler disk HOST SIZE_GB
    vmpooler status                       vmpooler ssh HOST|POOL
    vmpooler token get|list|status|delete vmpooler ondemand debian=2 --wait | status ID | cancel ID
    vmpooler events [--follow] [--pool P] [--type vm.]                     vmpooler audit [--by USER] [--vm HOST]
    vmpooler webhooks [log NAME | redeliver NAME ID]   (admins)

Every verb takes ``--url``/``--token``/``--user``/``--service`` (see :mod:`vmpooler.cli.client.config`),
``--json`` for machine-readable output and ``--debug`` for tracebacks. Output is a Rich table on a
terminal and plain lines otherwise. Exit codes: 0 ok, 1 the API refused (or ``status`` reports a
problem), 2 usage or configuration, 3 the server cannot be reached, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmpooler.cli.client.events import audit, events
from vmpooler.cli.client.hints import plural
from vmpooler.cli.client.ondemand import ondemand_app
from vmpooler.cli.client.session import (
    ClientOptions,
    Ctx,
    SpecArg,
    client_verb,
    emit,
    parse_specs,
    table,
    text,
    vm_rows,
)
from vmpooler.cli.client.ssh import ssh
from vmpooler.cli.client.tokens import token_app
from vmpooler.cli.client.waiting import checkout_waiting
from vmpooler.cli.client.webhooks import webhooks_app
from vmpooler.errors import ApiError, ServiceUnavailable

if TYPE_CHECKING:
    from vmpooler.client import Client

HostArg = Annotated[str, typer.Argument(help="a VM's hostname, short or fully qualified")]
#: `vmpooler status` when the service reports a problem (empty or degraded pools)
EXIT_UNHEALTHY = 1


@client_verb
def get(
    opts: ClientOptions,
    pools: SpecArg,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", help="seconds (up to 600) to wait for your turn instead of a refusal", metavar="SECONDS"
        ),
    ] = 0.0,
) -> None:
    """Check out ready VMs, all or nothing: `vmpooler get debian-12=2 centos`; `--wait 120` waits its turn
    (one pool), showing the place in the queue."""
    wanted = parse_specs(pools)
    with opts.session() as ctx, ctx.client() as client:
        try:
            vms = checkout_waiting(ctx.client, wanted, wait) if wait > 0 else client.checkout(wanted)
        except ServiceUnavailable as exc:
            raise _beyond_size(client, wanted, exc) from None
        emit(
            ctx,
            [vm.as_dict() for vm in vms],
            lambda: [vm.fqdn for vm in vms],
            lambda: table("hostname", "fqdn", "pool", rows=vm_rows(vms)),
        )


def _beyond_size(client: Client, wanted: dict[str, int], refused: ServiceUnavailable) -> ServiceUnavailable:
    """The refusal, saying the pool's size when more VMs were asked than the pool ever holds."""
    name = refused.extra.get("pool")
    if name not in wanted:
        return refused
    try:
        pools: dict[str, dict[str, Any]] = client.status(["pools"]).get("pools", {})
    except ApiError:
        return refused
    sizes = [int(p.get("max", 0)) for pool, p in pools.items() if name == pool or name in _aliases(p)]
    size = sum(sizes)
    if not sizes or wanted[name] <= size:
        return refused
    return ServiceUnavailable(
        f"{name!r} holds at most {plural(size, 'VM')} and {wanted[name]} were asked; nothing was checked out. "
        f"Ask for {size} or fewer, or have them cloned: `vmpooler ondemand {name}={wanted[name]}`",
        pool=name,
    )


def _aliases(pool: dict[str, Any]) -> list[str]:
    alias = pool.get("alias") or []
    return [alias] if isinstance(alias, str) else list(alias)


@client_verb
def list_(
    opts: ClientOptions,
    pool_filter: Annotated[
        str | None, typer.Argument(help="only the pools whose name contains this", metavar="FILTER")
    ] = None,
    active: Annotated[bool, typer.Option("--active", help="my running VMs (by token) instead of the pools")] = False,
) -> None:
    """The pools (those matching FILTER), or with --active the VMs checked out with your token and when
    each expires."""
    with opts.session() as ctx, ctx.client() as client:
        if not active:
            names = [n for n in client.pools() if pool_filter is None or pool_filter in n]
            emit(ctx, names, lambda: names, lambda: table("pool", rows=[[n] for n in names]))
            return
        infos = [
            info for info in _my_vms(ctx, client) if pool_filter is None or pool_filter in str(info.get("template", ""))
        ]
        rows = [
            [i["hostname"], i.get("template"), i.get("state"), i.get("remaining"), i.get("end_time"), _tags(i)]
            for i in infos
        ]
        emit(
            ctx,
            infos,
            lambda: [f"{i.get('fqdn', i['hostname'])} {_expiry(i)}" for i in infos],
            lambda: table("hostname", "pool", "state", "hours left", "expires", "tags", rows=rows),
        )


def _my_vms(ctx: Ctx, client: Client) -> list[dict[str, Any]]:
    running = client.token_info(ctx.need_token()).get("vms", {}).get("running", [])
    return [client.query(host) for host in running]


def _expiry(info: dict[str, Any]) -> str:
    if info.get("end_time") is None:
        return f"({info.get('state')})"
    return f"({info.get('remaining')} h left, expires {info['end_time']})"


def _tags(info: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in (info.get("tags") or {}).items())


@client_verb
def query(opts: ClientOptions, host: HostArg) -> None:
    """A VM's details: pool, state, owner, lifetime and time left in hours, tags, snapshots, ..."""
    with opts.session() as ctx, ctx.client() as client:
        info = client.query(host)
        fields = _readable(info)
        lines = [f"{k}: {v}" for k, v in fields]
        emit(ctx, info, lambda: lines, lambda: table("field", "value", rows=fields))


#: a VM's fields said with their unit (hours), in the order people read them
_HOURS = ("lifetime", "running", "remaining")
_ORDER = ("hostname", "fqdn", "template", "state", "user", *_HOURS, "start_time", "end_time")
_LABELS = {"template": "pool", "user": "owner", "end_time": "expires", "start_time": "checked out"}


def _readable(info: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in _ORDER if k in info] + [k for k in info if k not in _ORDER]
    out = []
    for key in keys:
        value = info[key]
        shown = f"{value} h" if key in _HOURS and value is not None else text(value)
        out.append((_LABELS.get(key, key), shown))
    return out


@client_verb
def modify(
    opts: ClientOptions,
    host: HostArg,
    lifetime: Annotated[int | None, typer.Option("--lifetime", min=1, help="hours, counted from checkout")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="NAME=VALUE, repeatable")] = None,
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
    with opts.session() as ctx, ctx.client() as client:
        client.modify(host, lifetime, tags)
        emit(ctx, {"ok": True, "hostname": host}, lambda: [f"modified {host}"])


@client_verb
def delete(
    opts: ClientOptions,
    hosts: Annotated[
        list[str] | None, typer.Argument(help="hostnames, or a,b,c", show_default=False, metavar="HOST...")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="every VM checked out with my token")] = False,
) -> None:
    """Return VMs to the pool (the manager destroys them)."""
    if not hosts and not all_:
        raise typer.BadParameter("name the VMs to return, or give --all")
    with opts.session() as ctx, ctx.client() as client:
        names = [name for given in hosts or [] for name in given.split(",") if name]
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


@client_verb
def snapshot(opts: ClientOptions, host: HostArg) -> None:
    """Queue a snapshot of a VM; prints its id."""
    with opts.session() as ctx, ctx.client() as client:
        sid = client.snapshot(host)
        emit(ctx, {"hostname": host, "snapshot": sid}, lambda: [sid])


@client_verb
def revert(
    opts: ClientOptions,
    host: HostArg,
    snapshot_id: Annotated[str, typer.Argument(help="the id `vmpooler snapshot` printed")],
) -> None:
    """Queue a revert of a VM to one of its snapshots."""
    with opts.session() as ctx, ctx.client() as client:
        client.revert(host, snapshot_id)
        emit(ctx, {"ok": True, "hostname": host, "snapshot": snapshot_id}, lambda: [f"reverting {host}"])


@client_verb
def disk(
    opts: ClientOptions,
    host: HostArg,
    size_gb: Annotated[int, typer.Argument(min=1, help="size of the new disk, in GB")],
) -> None:
    """Queue adding a disk to a VM; prints the disk as the API records it (+8gb)."""
    with opts.session() as ctx, ctx.client() as client:
        added = client.add_disk(host, size_gb)
        emit(ctx, {"hostname": host, "disk": added}, lambda: [added])


@client_verb
def status(opts: ClientOptions) -> None:
    """The service's health and every pool's ready/running/pending VMs, degraded pools first; exit 1 when
    the service reports a problem (empty or degraded pools)."""
    with opts.session() as ctx, ctx.client() as client:
        body = client.status()
    pools: dict[str, dict[str, Any]] = body.get("pools", {})
    health = body.get("status", {})
    order = sorted(pools, key=lambda name: "degraded" not in pools[name])  # stable: degraded first
    rows = [
        [name, p.get("ready"), p.get("max"), p.get("running"), p.get("pending"), _problem(p)]
        for name, p in ((name, pools[name]) for name in order)
    ]
    emit(
        ctx,
        body,
        lambda: [_headline(health)] + [_status_line(r) for r in rows],
        lambda: table("pool", "ready", "size", "running", "pending", "problem", rows=rows, title=_headline(health)),
    )
    if health.get("ok") is False:
        raise typer.Exit(EXIT_UNHEALTHY)


def _problem(pool: dict[str, Any]) -> str:
    degraded = pool.get("degraded")
    if not isinstance(degraded, dict):
        return "empty" if pool.get("ready") == 0 and pool.get("max") else ""
    return f"degraded: {degraded.get('problem', 'cannot be filled')}"


def _headline(health: dict[str, Any]) -> str:
    """The service's verdict, naming the pools (its message only counts them)."""
    if health.get("ok") is not False:
        return str(health.get("message", ""))
    parts = []
    for key, noun in (("empty", "empty pool"), ("degraded", "degraded pool")):
        names: Sequence[str] = health.get(key) or []
        if names:
            parts.append(f"{plural(len(names), noun)}: {', '.join(names)}")
    return "; ".join(parts) or str(health.get("message", "unhealthy"))


def _status_line(row: list[Any]) -> str:
    name, ready, size, running, pending, problem = row
    return f"{name} ready={ready}/{size} running={running} pending={pending}" + (f" {problem}" if problem else "")


@client_verb
def summary(
    opts: ClientOptions,
    from_: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default: today)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD (default: today)")] = None,
) -> None:
    """Clones, boots and tags per day, from the history the service keeps."""
    with opts.session() as ctx, ctx.client() as client:
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


def register(app: typer.Typer) -> None:
    """Add the client verbs to the ``vmpooler`` command."""
    for verb in (get, query, modify, delete, snapshot, revert, disk, status, summary, ssh):
        app.command(verb.__name__)(verb)
    app.command("list")(list_)
    app.command("events")(events)
    app.command("audit")(audit)
    app.add_typer(ondemand_app, name="ondemand")
    app.add_typer(token_app, name="token")
    app.add_typer(webhooks_app, name="webhooks")


__all__ = ["register"]
