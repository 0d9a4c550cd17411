"""``vmpooler quarantine``: the VMs that failed their hand-out check, kept for debugging.

    vmpooler quarantine list [--json]             every quarantined VM: pool, since, why
    vmpooler quarantine release NAME...           back to ready, each only after it passes its pool's check
    vmpooler quarantine destroy NAME... | --all   to completed: the manager destroys them now

Options and exit codes as the other operator commands (cli/admin.py): 0 ok, 1 a VM could not be moved
(not quarantined, or it failed its check again), 2 configuration, 3 Redis unreachable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from vmpooler.cli.admin import EXIT_FOUND, OperatorOptions, _emit, _run_async, _store, operator_command
from vmpooler.cli.client.session import table

if TYPE_CHECKING:
    from vmpooler.config import Settings
    from vmpooler.store.redis import Store

app = typer.Typer(help="VMs that failed their hand-out check: list, release or destroy them.", no_args_is_help=True)
NamesArg = Annotated[list[str] | None, typer.Argument(help="quarantined VM names", show_default=False)]
AllOpt = Annotated[bool, typer.Option("--all", help="every quarantined VM")]
ForceOpt = Annotated[bool, typer.Option("--force", help="release without checking (a pool with no handout_check)")]


@app.command("list")
@operator_command
def list_(
    opts: OperatorOptions,
) -> None:
    """Every quarantined VM, oldest first, with why it failed; and how many each pool ever had."""
    with opts.errors():
        found, totals = _run_async(_list(opts.settings()))
    rows = [[vm["pool"], vm["name"], vm["since"], vm["reason"]] for vm in found]
    _emit(
        opts.as_json,
        {"quarantined": found, "quarantined_total": totals},
        lambda: [f"{vm['pool']} {vm['name']} {vm['since']} {vm['reason']}" for vm in found],
        lambda: table("pool", "VM", "since", "why", rows=rows),
    )


async def _list(settings: Settings) -> tuple[list[dict[str, str]], dict[str, int]]:
    async with _store(settings) as store:
        pools = [pool.name for pool in settings.pools]
        found = await store.handout.quarantined(pools)
        totals = await store.handout.quarantined_total(pools)
    return [{"pool": vm.pool, "name": vm.name, "since": _when(vm.since), "reason": vm.reason} for vm in found], totals


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch is not None else "-"


@app.command()
@operator_command(json=False)
def release(
    opts: OperatorOptions,
    names: NamesArg = None,
    force: ForceOpt = False,
) -> None:
    """Put quarantined VMs back in circulation (ready), each only once it passes its pool's hand-out check."""
    with opts.errors():
        outcomes = _run_async(_release(opts.settings(), names or [], force))
    _report(outcomes)


async def _release(settings: Settings, names: list[str], force: bool) -> dict[str, str | None]:
    from vmpooler.health.probe import probe
    from vmpooler.states import VMState

    outcomes: dict[str, str | None] = {}
    async with _store(settings) as store:
        where = await _quarantined(store, names)
        for name in names:
            pool = where.get(name)
            if pool is None:
                outcomes[name] = "not quarantined"
                continue
            config = settings.pool(pool)
            check = config.handout_check if config is not None else None
            if check is None and not force:
                outcomes[name] = f"pool {pool} has no handout_check to pass: give --force to release it unchecked"
                continue
            if check is not None:
                address = (await store.vm(name)).get("ip", "")
                domain = settings.domain_for(config) if config is not None else None
                failed = await probe(check, address, f"{name}.{domain}" if domain else name)
                if failed is not None:
                    outcomes[name] = f"still fails its check ({failed}): `vmpooler quarantine destroy {name}`"
                    continue
            moved = await store.move(pool, name, VMState.QUARANTINE, VMState.READY)
            outcomes[name] = None if moved else "no longer quarantined"
            await store.events.notify([pool])
    return outcomes


@app.command()
@operator_command(json=False)
def destroy(
    opts: OperatorOptions,
    names: NamesArg = None,
    every: AllOpt = False,
) -> None:
    """Hand quarantined VMs to the manager for destruction now (quarantine -> completed)."""
    if not names and not every:
        typer.echo("error: name the VMs to destroy, or give --all", err=True)
        raise typer.Exit(EXIT_FOUND)
    with opts.errors():
        outcomes = _run_async(_destroy(opts.settings(), names or [], every))
    _report(outcomes)


async def _destroy(settings: Settings, names: list[str], every: bool) -> dict[str, str | None]:
    from vmpooler.states import VMState

    async with _store(settings) as store:
        if every:
            names = [vm.name for vm in await store.handout.quarantined([p.name for p in settings.pools])]
        where = await _quarantined(store, names)
        outcomes: dict[str, str | None] = {}
        for name in names:
            pool = where.get(name)
            moved = pool is not None and await store.move(pool, name, VMState.QUARANTINE, VMState.COMPLETED)
            outcomes[name] = None if moved else "not quarantined"
        await store.events.notify(sorted({pool for pool in where.values()}))
    return outcomes


async def _quarantined(store: Store, names: list[str]) -> dict[str, str]:
    """name -> pool of those of ``names`` that are quarantined now."""
    from vmpooler.states import VMState

    found: dict[str, str] = {}
    for name in names:
        located = await store.locate(name)
        if located is not None and located[1] is VMState.QUARANTINE:
            found[name] = located[0]
    return found


def _report(outcomes: dict[str, str | None]) -> None:
    for name, problem in outcomes.items():
        if problem is None:
            typer.echo(f"{name}: done")
        else:
            typer.echo(f"error: {name}: {problem}", err=True)
    if any(problem is not None for problem in outcomes.values()):
        raise typer.Exit(EXIT_FOUND)


__all__ = ["app"]
