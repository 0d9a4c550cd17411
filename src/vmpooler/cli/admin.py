"""Operator commands that read the service's Redis (and providers) directly, not through the API.

    vmpooler inventory [--json]                   every pool's VMs by state, as Redis holds them
    vmpooler purge [--no-dry-run] [--json]        VMs providers hold that Redis does not know; destroy them
    vmpooler migrate-from-ruby [--json]           does a Redis written by the original vmpooler read correctly?
    vmpooler migrate-from-ruby --finalize         the original's clear-text tokens become hashed-only

Each takes ``--config`` (as ``vmpooler serve``) and reads the Redis named there; without one, the embedded
Redis a running ``vmpooler serve`` keeps in ``--state-dir`` (its password is read from there).
Exit codes: 0 ok, 1 something was found (unknown VMs, migration problems, failed destroys), 2 configuration,
3 Redis unreachable; ``--debug`` shows the traceback instead of one line.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, overload

import typer

from vmpooler.cli.client.session import DebugOpt, JsonOpt, table
from vmpooler.cli.shared import parameters, shared_options
from vmpooler.errors import ConfigError, ProviderError, StoreError, StoreUnavailable
from vmpooler.states import LIVE_STATES

# the runtime, the providers and Redis load in the commands' bodies: the client verbs of the same
# `vmpooler` command must start without them (issue 17)
if TYPE_CHECKING:
    from rich.table import Table

    from vmpooler.cli import leaks, migration_check
    from vmpooler.config import Settings
    from vmpooler.providers.base import Provider
    from vmpooler.store.redis import Store

EXIT_FOUND, EXIT_CONFIG, EXIT_UNREACHABLE = 1, 2, 3
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config (default: $VMPOOLER_CONFIG, $VMPOOLER_CONFIG_FILE, ./vmpooler.yaml)"
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run/--no-dry-run", help="only list the unknown VMs (--no-dry-run destroys them)")
]
TimeoutOpt = Annotated[float, typer.Option(min=1, help="seconds one provider call may take")]
DEFAULT_STATE_DIR = Path(".vmpooler")
StateDirOpt = Annotated[
    Path,
    typer.Option(
        help="the state dir of the `vmpooler serve` whose embedded Redis to read", envvar="VMPOOLER_STATE_DIR"
    ),
]
FinalizeOpt = Annotated[
    bool,
    typer.Option(
        "--finalize",
        help="end the migration: the original's clear-text tokens are stored hashed only (it can no longer use them)",
    ),
]


@dataclass(frozen=True)
class OperatorOptions:
    """What every operator command takes, declared once (:func:`operator_command`): each field one option."""

    config: ConfigOpt = None
    state_dir: StateDirOpt = DEFAULT_STATE_DIR
    as_json: JsonOpt = False
    debug: DebugOpt = False

    def settings(self) -> Settings:
        return _settings(self.config, self.state_dir)

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Our errors as one stderr line and an exit code (with ``--debug``, the traceback instead)."""
        return _one_line_errors(self.debug)


@overload
def operator_command(command: Callable[..., None], /) -> Callable[..., None]: ...
@overload
def operator_command(*, json: bool = True) -> Callable[[Callable[..., None]], Callable[..., None]]: ...
def operator_command(command: Callable[..., None] | None = None, /, *, json: bool = True) -> Any:
    """Give a command the operator options after its own, as one :class:`OperatorOptions` (its first
    parameter); ``json=False`` for commands that print nothing but their outcome."""
    shared = [p for p in parameters(OperatorOptions) if json or p.name != "as_json"]
    decorate = shared_options(OperatorOptions, shared)
    return decorate if command is None else decorate(command)


@contextlib.contextmanager
def _one_line_errors(debug: bool) -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        if debug:
            raise
        problems = "; ".join(exc.problems)
        _fail(EXIT_CONFIG, f"configuration: {problems} (check the file with `vmpooler validate-config FILE`)")
    except StoreUnavailable as exc:
        if debug:
            raise
        hint = "is Redis running, and are :redis: server/port (REDIS_SERVER/PORT) right?"
        _fail(EXIT_UNREACHABLE, f"{str(exc).rstrip('.')}; {hint}")
    except (StoreError, ProviderError) as exc:
        if debug:
            raise
        _fail(EXIT_FOUND, str(exc))
    except ImportError as exc:  # a provider's module, or the SDK it needs, is not installed
        if debug:
            raise
        _fail(EXIT_FOUND, f"a provider cannot be loaded: {exc}")


def _run_async(work: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here, not at the top: the client verbs of the same command start without it

    return asyncio.run(work)


def _fail(code: int, message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings(config: Path | None, state_dir: Path) -> Settings:
    from vmpooler.config import load_settings
    from vmpooler.store.embedded import running_embedded

    settings, warnings = load_settings(config)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if settings.redis.embedded:
        # the embedded Redis of a running `vmpooler serve`, found (with its password) through its state dir
        running = running_embedded(state_dir)
        if running is None:
            raise ConfigError(
                [
                    f"redis.server: not set, and no `vmpooler serve` runs an embedded Redis in {state_dir}; "
                    "start it, give its --state-dir, or name the Redis (:redis: server or REDIS_SERVER)"
                ]
            )
        update = {"server": running.server, "port": running.port, "password": running.password}
        settings = settings.model_copy(update={"redis": settings.redis.model_copy(update=update)})
    return settings


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    from vmpooler.runtime import open_store

    store, _ = open_store(settings, Path("."))  # a configured or running Redis (see _settings): nothing is started
    try:
        await store.ping()
        yield store
    finally:
        await store.close()


def _emit(as_json: bool, data: Any, plain: Callable[[], Sequence[str]], rich: Callable[[], Table]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich())
    else:
        for line in plain():
            typer.echo(line)


# ---- inventory ------------------------------------------------------------------------------------


@operator_command
def inventory(
    opts: OperatorOptions,
) -> None:
    """Every pool's VMs by state, as Redis holds them (configured pools first, then any others Redis names)."""
    with opts.errors():
        pools = _run_async(_inventory(opts.settings()))
    rows = [
        [name, state, len(vms), " ".join(vms)]
        for name, pool in pools.items()
        for state, vms in pool["vms"].items()
        if vms
    ]
    rows += [[name, "-", 0, ""] for name, pool in pools.items() if not any(pool["vms"].values())]
    _emit(
        opts.as_json,
        {"pools": pools},
        lambda: [
            f"{name} {state} {len(vms)} {' '.join(vms)}".rstrip()
            for name, p in pools.items()
            for state, vms in p["vms"].items()
        ],
        lambda: table("pool", "state", "VMs", "names", rows=sorted(rows, key=lambda row: list(pools).index(row[0]))),
    )


async def _inventory(settings: Settings) -> dict[str, dict[str, Any]]:
    from vmpooler.store.audit import KeyAudit

    async with _store(settings) as store:
        configured = [pool.name for pool in settings.pools]
        others = sorted(await KeyAudit(store.client).registered_pools() - set(configured))
        pools: dict[str, dict[str, Any]] = {}
        for name in configured + others:
            members = await store.all_members(name)
            vms = {state.value: sorted(members[state]) for state in LIVE_STATES}
            pools[name] = {"configured": name in configured, "vms": vms}
        return pools


# ---- purge ------------------------------------------------------------------------------------------


@operator_command
def purge(
    opts: OperatorOptions,
    dry_run: DryRunOpt = True,
    timeout: TimeoutOpt = 120.0,
) -> None:
    """VMs the pools' providers hold that Redis does not know (leaks); --no-dry-run destroys them.

    Exit 0 when there are none (or all were destroyed), 1 when some were found (or could not be destroyed)."""
    from vmpooler.providers import registry
    from vmpooler.validate import problems as start_up_problems

    with opts.errors():
        settings = opts.settings()
        if found := start_up_problems(settings):  # the same words as validate-config and start-up
            raise ConfigError(found)
        providers = registry.build_all(settings.pools, settings.providers, settings.config, opts.state_dir)
        results = _run_async(_purge(settings, providers, dry_run, timeout))
    unknown = [(pool.pool, name) for pool in results for name in pool.unknown]
    destroyed = [(pool.pool, name) for pool in results for name in pool.destroyed]
    failed = [(pool.pool, name, why) for pool in results for name, why in pool.failed.items()]
    rows = [[r.pool, r.provider, " ".join(r.unknown), r.error or _outcome(r, dry_run)] for r in results]
    _emit(
        opts.as_json,
        {"dry_run": dry_run, "pools": {pool.pool: pool.as_dict() for pool in results}},
        # one VM a line: the unknown ones in a dry run, else the ones destroyed
        lambda: [f"{pool} {name}" for pool, name in (unknown if dry_run else destroyed)],
        lambda: table("pool", "provider", "unknown VMs", "result", rows=rows),
    )
    for pool in results:
        if pool.error:
            typer.echo(f"error: pool {pool.pool}: inventory failed, nothing judged: {pool.error}", err=True)
    for pool_name, name, why in failed:
        typer.echo(f"error: pool {pool_name}: {name} not destroyed: {why}", err=True)
    if unknown and dry_run and not opts.as_json:
        typer.echo(f"{len(unknown)} VM(s) unknown to Redis; `vmpooler purge --no-dry-run` destroys them", err=True)
    problems = failed or any(pool.error for pool in results) or (dry_run and unknown)
    raise typer.Exit(EXIT_FOUND if problems else 0)


def _outcome(found: leaks.PoolLeaks, dry_run: bool) -> str:
    if not found.unknown:
        return "clean"
    if dry_run:
        return f"{len(found.unknown)} unknown"
    return f"{len(found.destroyed)} destroyed" + (f", {len(found.failed)} failed" if found.failed else "")


async def _purge(
    settings: Settings, providers: Mapping[str, Provider], dry_run: bool, timeout: float
) -> list[leaks.PoolLeaks]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vmpooler.cli import leaks

    try:
        async with _store(settings) as store:
            contexts = leaks.contexts(settings, store, providers, timeout)
            results = [await leaks.find(ctx) for ctx in contexts]
            to_destroy = [(ctx, found) for ctx, found in zip(contexts, results, strict=True) if found.unknown]
            total = sum(len(found.unknown) for _, found in to_destroy)
            if dry_run or not total:
                return results
            console = Console(stderr=True)
            columns = (TextColumn("destroying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
                task = progress.add_task("destroy", total=total)
                await leaks.destroy(to_destroy, lambda pool, name: progress.advance(task))
            return results
    finally:
        for provider in providers.values():
            await provider.close()


# ---- migrate-from-ruby ---------------------------------------------------------------------------------


@operator_command
def migrate_from_ruby(
    opts: OperatorOptions,
    finalize: FinalizeOpt = False,
) -> None:
    """Check that a Redis written by the original (Ruby) vmpooler reads correctly here; changes nothing.
    With --finalize (once the original is stopped for good), store its clear-text tokens hashed only.

    Exit 0 when everything is readable, 1 when there are problems (each listed)."""
    if finalize:
        with opts.errors():
            done = _run_async(_finalize(opts.settings()))
        if opts.as_json:
            typer.echo(json.dumps({"ok": True, "tokens": done}, indent=2))
        else:
            for token, vms in done.items():
                typer.echo(f"token {token}: stored hashed only" + (f"; holds {', '.join(vms)}" if vms else ""))
            typer.echo(f"{len(done)} token(s) of the original finalized; the original no longer accepts them")
        return
    with opts.errors():
        report = _run_async(_migration_report(opts.settings()))
    from rich.console import Console

    lines = _report_lines(report)
    rows = [[p.name + ("" if p.configured else " (not configured)"), *p.counts.values()] for p in report.pools]
    if opts.as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif sys.stdout.isatty():
        Console().print(table("pool", *(state.value for state in LIVE_STATES), rows=rows))
        for line in lines[len(report.pools) :]:
            Console().print(line, markup=False, highlight=False)
    else:
        for line in lines:
            typer.echo(line)
    raise typer.Exit(EXIT_FOUND if report.problems else 0)


async def _finalize(settings: Settings) -> dict[str, list[str]]:
    from vmpooler.auth.tokens import TokenService

    async with _store(settings) as store:
        return await TokenService(store.tokens).finalize_original_tokens()


async def _migration_report(settings: Settings) -> migration_check.MigrationReport:
    from vmpooler.cli import migration_check

    async with _store(settings) as store:
        return await migration_check.check(settings, store)


def _report_lines(report: migration_check.MigrationReport) -> list[str]:
    lines = [
        f"pool {p.name}{'' if p.configured else ' (not configured)'}: "
        + ", ".join(f"{state} {count}" for state, count in p.counts.items())
        for p in report.pools
    ]
    if report.adoptable_tokens:
        lines.append(
            f"tokens: {len(report.adoptable_tokens)} stored in clear by the original, re-stored hashed on first use: "
            + ", ".join(report.adoptable_tokens)
        )
    lines += [f"ignored: {key}: {note}" for key, note in report.ignored_keys.items()]
    lines += [f"problem: {problem}" for problem in report.problems]
    verdict = f"{len(report.problems)} problem(s)" if report.problems else "OK: everything vmpooler needs is readable"
    lines.append(f"{report.keys_read} keys read; {verdict}")
    return lines


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``vmpooler`` command."""
    app.command("inventory")(inventory)
    app.command("purge")(purge)
    app.command("migrate-from-ruby")(migrate_from_ruby)
    from vmpooler.cli import quarantine  # here: it imports this module's helpers

    app.add_typer(quarantine.app, name="quarantine")


__all__ = ["register"]
