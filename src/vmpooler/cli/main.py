"""The ``vmpooler`` command: run the service (whole, API only, manager only), check configuration, and the
client verbs (``get``, ``list``, ``delete``, ...; see :mod:`vmpooler.cli.client.commands`).

Client verbs must start fast (issue 17: ``vmpooler get`` in ≤ 0.3 s), so this module imports no server
code: the server commands import the runtime (FastAPI, the manager, the providers) inside their bodies.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from vmpooler import __version__
from vmpooler.cli import admin, probe, simulate
from vmpooler.cli.client import commands as client_commands
from vmpooler.cli.help import LazyConsole, plain_help
from vmpooler.cli.shared import parameters, shared_options

if TYPE_CHECKING:
    from vmpooler.config import Settings
    from vmpooler.runtime import Roles

# plain (click-style) help: it needs no Rich at start-up, and shows no ``<str>``/``<bool>`` type placeholders
app = typer.Typer(
    help="vmpooler: pools of ready virtual machines behind a small REST API.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
err = LazyConsole()


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"vmpooler {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit")
    ] = False,
) -> None:
    """The options of `vmpooler` itself (`--version`); the Typer help above is what `--help` shows."""


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config (default: $VMPOOLER_CONFIG, $VMPOOLER_CONFIG_FILE, ./vmpooler.yaml)",
    ),
]
#: a server's default listen address: every interface, as a container needs (--host narrows it); bandit B104 reviewed
ALL_INTERFACES = "0.0.0.0"  # nosec B104
HostOption = Annotated[str, typer.Option(help="address to listen on", envvar="VMPOOLER_HOST")]
PortOption = Annotated[int, typer.Option(help="port to listen on", envvar="VMPOOLER_PORT")]
StateOption = Annotated[
    Path,
    typer.Option(
        help="the state folder: the embedded Redis keeps its data here, and relative provider paths start here",
        envvar="VMPOOLER_STATE_DIR",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")]
TlsCertOption = Annotated[
    Path | None,
    typer.Option("--tls-cert", help="serve HTTPS with this PEM certificate (overrides :config: api_tls_cert_file)"),
]
TlsKeyOption = Annotated[
    Path | None, typer.Option("--tls-key", help="its private key (overrides :config: api_tls_key_file)")
]
WorkersOption = Annotated[
    int, typer.Option(min=1, max=64, help="API worker processes sharing the port (1: one process does all)")
]


def _setup_logging(settings: Settings, verbose: bool) -> None:
    from vmpooler.logs import setup_logging

    cfg = settings.config
    for warning in setup_logging(logging.DEBUG if verbose else logging.INFO, cfg.log_format, cfg.logfile):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _fail_config(problems: list[str]) -> NoReturn:
    err.print("[red]configuration error[/]")
    for problem in problems:
        err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(config: Path | None) -> Settings:
    from vmpooler.config import load_settings
    from vmpooler.errors import ConfigError
    from vmpooler.validate import notes, problems

    try:
        settings, warnings = load_settings(config)
    except ConfigError as exc:
        _fail_config(exc.problems)
    # the very checks validate-config runs: a file it passes starts, one it fails does not
    for warning in warnings + notes(settings):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    found = problems(settings)
    if found:
        _fail_config(found)
    return settings


def _with_api_tls(settings: Settings, cert: Path | None, key: Path | None) -> Settings:
    """``settings`` with the certificate and key given on the command line, checked like the config keys."""
    from vmpooler.config import pair_problems

    if cert is None and key is None:
        return settings
    cert_file = str(cert) if cert else settings.config.api_tls_cert_file
    key_file = str(key) if key else settings.config.api_tls_key_file
    problems = pair_problems("--tls-cert", cert_file, "--tls-key", key_file)
    if problems:
        _fail_config(problems)
    update = {"api_tls_cert_file": cert_file, "api_tls_key_file": key_file}
    return settings.model_copy(update={"config": settings.config.model_copy(update=update)})


def _run(
    config: Path | None,
    roles: Roles,
    host: str,
    port: int,
    state_dir: Path,
    verbose: bool,
    workers: int = 1,
    tls: tuple[Path | None, Path | None] = (None, None),
) -> None:
    from vmpooler.errors import VmpoolerError
    from vmpooler.runtime import Launch, run
    from vmpooler.supervisor import run_workers

    settings = _with_api_tls(_load(config), *tls)
    launch = Launch(settings, roles, host, port, state_dir)
    if workers > 1 or (roles.api and roles.manager):
        # serve: the manager in a process of its own, so it never makes a request wait (supervisor.py)
        code = run_workers(launch, workers, lambda: _setup_logging(settings, verbose))
        raise typer.Exit(code)
    _setup_logging(settings, verbose)
    try:
        import uvloop

        uvloop.run(run(launch))
    except VmpoolerError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass


@dataclass(frozen=True)
class ServerOptions:
    """What `serve` and `api` both take, declared once: each field is one command-line option."""

    config: ConfigOption = None
    host: HostOption = ALL_INTERFACES
    port: PortOption = 4567
    state_dir: StateOption = Path(".vmpooler")
    verbose: VerboseOption = False
    workers: WorkersOption = 1
    tls_cert: TlsCertOption = None
    tls_key: TlsKeyOption = None

    def run(self, roles: Roles) -> None:
        tls = (self.tls_cert, self.tls_key)
        _run(self.config, roles, self.host, self.port, self.state_dir, self.verbose, self.workers, tls)


server_command = shared_options(ServerOptions, parameters(ServerOptions))


@app.command()
@server_command
def serve(
    opts: ServerOptions,
    demo_traffic: Annotated[
        bool, typer.Option("--demo-traffic", help="simulate a few users checking VMs out and back (demos)")
    ] = False,
) -> None:
    """API, manager and (when no Redis is configured) an embedded Redis: the API (or, with --workers N, N API
    processes on one port) and the manager each in a process of its own, under one supervising process."""
    from vmpooler.runtime import Roles

    opts.run(Roles(api=True, manager=True, demo_traffic=demo_traffic))


@app.command()
@server_command
def api(opts: ServerOptions) -> None:
    """Only the REST API, against the configured Redis (several may share one)."""
    from vmpooler.runtime import Roles

    opts.run(Roles(api=True, manager=False))


@app.command()
def manager(
    config: ConfigOption = None,
    state_dir: StateOption = Path(".vmpooler"),
    verbose: VerboseOption = False,
) -> None:
    """Only the pool manager, against the configured Redis."""
    from vmpooler.runtime import Roles

    _run(config, Roles(api=False, manager=True), "127.0.0.1", 0, state_dir, verbose)


@app.command("validate-config")
def validate_config(
    file: Annotated[Path, typer.Argument(help="YAML file to check")],
    state_dir: StateOption = Path(".vmpooler"),
) -> None:
    """Check a configuration file offline; exit 0 when valid, 1 when not. Relative provider paths (a dummy
    inventory, a qemu state folder) are checked under --state-dir, as `serve` takes them."""
    from vmpooler.validate import validate_file

    errors, warnings = validate_file(file, env=os.environ, state_dir=state_dir)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if errors:
        err.print(f"[red]{file}: {len(errors)} problem(s)[/]", highlight=False)
        for problem in errors:
            err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    typer.echo(f"{file}: OK")


client_commands.register(app)
admin.register(app)
app.command("manager-alive")(probe.manager_alive)
app.command("simulate")(simulate.simulate_command)
plain_help(app)

if __name__ == "__main__":
    app()
