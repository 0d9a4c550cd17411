"""``vmpooler ondemand``: ask for VMs cloned for you, follow the request, cancel it.

    vmpooler ondemand debian=2 [--wait [--cancel-on-interrupt]]   (the same as `ondemand request ...`)
    vmpooler ondemand status ID                                   ready VMs, or what is still pending
    vmpooler ondemand cancel ID                                   its VMs are returned

A request goes on cloning after the command ends, so the id is always printed: Ctrl-C during ``--wait``
says how to follow or cancel it (and asks, on a terminal), or cancels it with ``--cancel-on-interrupt``.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from vmpooler.cli.client.session import ClientOptions, SpecArg, client_verb, emit, parse_specs, table, vm_rows
from vmpooler.errors import ApiError, NotFound

if TYPE_CHECKING:
    from vmpooler.client import Client, RequestStatus

EXIT_INTERRUPTED = 130
IdArg = Annotated[str, typer.Argument(help="the request id `vmpooler ondemand` printed", metavar="ID")]


class RequestByDefault(TyperGroup):
    """``vmpooler ondemand debian=2`` means ``vmpooler ondemand request debian=2``: anything that is not
    one of the group's commands (or its --help) goes to ``request``."""

    default_command = "request"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


ondemand_app = typer.Typer(
    cls=RequestByDefault,
    help="Ask for VMs cloned for you (`vmpooler ondemand debian=2 --wait`), follow or cancel a request.",
    no_args_is_help=True,
)


@ondemand_app.command("request")
@client_verb
def request(
    opts: ClientOptions,
    pools: SpecArg,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the VMs are ready, showing progress")] = False,
    cancel_on_interrupt: Annotated[
        bool, typer.Option("--cancel-on-interrupt", help="with --wait: Ctrl-C cancels the request")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most", metavar="SECONDS")] = 600.0,
    interval: Annotated[float, typer.Option(help="seconds between polls while waiting", metavar="SECONDS")] = 1.0,
) -> None:
    """Ask for VMs to be provisioned on demand; prints the request id, or with --wait the VMs once ready."""
    wanted = parse_specs(pools)
    # the id is chosen here, so that a Ctrl-C at any moment, even while the request is sent, can name it
    rid = str(uuid.uuid4())
    with opts.session() as ctx, ctx.client() as client:
        try:
            client.request(wanted, rid)
            if not wait:
                emit(ctx, {"request_id": rid}, lambda: [rid])
                return
            done = _wait_for(client, rid, wanted, timeout, interval)
        except KeyboardInterrupt:
            _interrupted(client, rid, cancel_on_interrupt)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if not done.ready:
            raise ApiError(f"on-demand request {rid}: {done.message}")
        _show(ctx, done)


@ondemand_app.command("status")
@client_verb
def status(opts: ClientOptions, request_id: IdArg) -> None:
    """An on-demand request's VMs once ready, or how many are ready per pool; exit 1 if it failed or was
    cancelled."""
    with opts.session() as ctx, ctx.client() as client:
        current = client.request_status(request_id)
        if current.ready or current.message is None:
            _show(ctx, current)
            return
        if opts.as_json:
            emit(ctx, current.as_dict(), lambda: [])
        raise ApiError(f"on-demand request {request_id}: {current.message}")


@ondemand_app.command("cancel")
@client_verb
def cancel(opts: ClientOptions, request_id: IdArg) -> None:
    """Cancel an on-demand request; the VMs it has got so far are returned."""
    with opts.session() as ctx, ctx.client() as client:
        client.cancel_request(request_id)
        emit(ctx, {"ok": True, "request_id": request_id}, lambda: [f"cancelled {request_id}"])


def _show(ctx: Any, current: RequestStatus) -> None:
    rid = current.request_id
    if current.ready:
        emit(
            ctx,
            current.as_dict(),
            lambda: [vm.fqdn for vm in current.vms],
            lambda: table("hostname", "fqdn", "pool", rows=vm_rows(current.vms), title=f"request {rid}"),
        )
        return
    rows = [[name, c.get("ready", 0), c.get("ready", 0) + c.get("pending", 0)] for name, c in current.pending.items()]
    emit(
        ctx,
        current.as_dict(),
        lambda: [f"{name} ready={ready}/{total}" for name, ready, total in rows],
        lambda: table("pool", "ready", "asked", rows=rows, title=f"request {rid}: pending"),
    )


def _interrupted(client: Client, rid: str, cancel_on_interrupt: bool) -> None:
    """After Ctrl-C: cancel the request when told to (or, on a terminal, when the user says so), else say
    how to follow it up; it goes on cloning either way until cancelled."""
    say = sys.stderr.write
    say("\ninterrupted; ")
    if not cancel_on_interrupt and sys.stdin.isatty() and sys.stderr.isatty():
        say(f"on-demand request {rid} goes on cloning.\n")
        try:
            cancel_on_interrupt = typer.confirm("Cancel it?", default=False, err=True)
        except typer.Abort:  # a second Ctrl-C (or end of input) at the question: keep it
            cancel_on_interrupt = False
    if cancel_on_interrupt:
        try:
            client.cancel_request(rid)
        except NotFound:
            say(f"on-demand request {rid} was not made\n")
            return
        say(f"cancelled on-demand request {rid} (its VMs are returned)\n")
        return
    say(
        f"on-demand request {rid} goes on: `vmpooler ondemand status {rid}` follows it, "
        f"`vmpooler ondemand cancel {rid}` cancels it\n"
    )


def _wait_for(client: Client, rid: str, wanted: dict[str, int], timeout: float, interval: float) -> RequestStatus:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    console = Console(stderr=True)
    # refreshed by this loop, not by Rich's refresh thread: a Ctrl-C that lands while that thread and this
    # one share Rich's lock could leave the process unable to exit; and nothing is drawn off a terminal
    progress = Progress(*columns, console=console, transient=True, auto_refresh=False, disable=not console.is_terminal)
    with progress:
        tasks = {name: progress.add_task(name, total=n) for name, n in wanted.items()}
        while True:
            current = client.request_status(rid)
            if current.finished:
                return current
            for name, counts in current.pending.items():
                if name in tasks:
                    progress.update(tasks[name], completed=counts.get("ready", 0))
            progress.refresh()
            if time.monotonic() > deadline:
                raise ApiError(
                    f"on-demand request {rid} is not ready after {timeout:g}s; it goes on: "
                    f"`vmpooler ondemand status {rid}` follows it, `vmpooler ondemand cancel {rid}` cancels it"
                )
            time.sleep(interval)


__all__ = ["ondemand_app"]
