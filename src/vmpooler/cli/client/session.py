"""What every client verb shares: the connection options, one error-to-exit-code policy, and output.

Output is ``--json`` when asked, a Rich table when stdout is a terminal, plain lines otherwise. Exit codes:
0 ok, 1 the API refused (its message on stderr, one line), 2 usage or configuration, 3 the server cannot
be reached; ``--debug`` lets the exception (and its traceback) through instead.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec, TypeVar, overload

import typer

from vmpooler.cli.client.config import Connection, resolve
from vmpooler.cli.client.hints import in_cli_terms
from vmpooler.cli.shared import parameters, shared_options
from vmpooler.errors import ApiError, ConfigError, ServerUnreachable, VmpoolerError

# httpx and Rich load when a verb first needs them: `vmpooler --help` needs neither (issue 17)
if TYPE_CHECKING:
    from rich.table import Table

    from vmpooler.client import Client

EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="VMPOOLER_URL", help="vmpooler base URL (with or without /api/v3)", metavar="URL"),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="VMPOOLER_TOKEN", help="API token (`vmpooler token get`)", metavar="TOKEN"),
]
UserOpt = Annotated[
    str | None, typer.Option("--user", envvar="VMPOOLER_USER", help="user name for token commands", metavar="NAME")
]
ServiceOpt = Annotated[
    str | None,
    typer.Option("--service", help="a named service of ~/.vmpooler.yaml (or ~/.vmfloaty.yml)", metavar="NAME"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", envvar="VMPOOLER_PASSWORD", help="password (prompted if absent)", metavar="PASSWORD"),
]
SpecArg = Annotated[
    list[str], typer.Argument(help="POOL or POOL=N, repeatable", show_default=False, metavar="POOL[=N]...")
]


class UsageProblem(VmpoolerError):
    """Something the user must add or fix on the command line (exit 2)."""


@dataclass
class Ctx:
    url: str
    token: str | None
    user: str | None
    as_json: bool
    debug: bool
    connection: Connection | None = None

    @property
    def people(self) -> bool:
        return sys.stdout.isatty()

    def client(self) -> Client:
        from vmpooler.client import Client

        return Client(self.url, self.token)

    def need_token(self) -> str:
        if not self.token:
            raise UsageProblem(
                "this needs a token: --token, $VMPOOLER_TOKEN or token: in ~/.vmpooler.yaml "
                "(`vmpooler token get` makes one)"
            )
        return self.token

    def need_user(self) -> str:
        if not self.user:
            raise UsageProblem("this needs a user name: --user, $VMPOOLER_USER or user: in ~/.vmpooler.yaml")
        return self.user


@dataclass(frozen=True)
class ClientOptions:
    """The options every client verb takes, declared once (:func:`client_verb`) and handed over as one;
    ``--help`` lists them in this order, after each verb's own."""

    url: UrlOpt = None
    token: TokenOpt = None
    user: UserOpt = None
    service: ServiceOpt = None
    as_json: JsonOpt = False
    debug: DebugOpt = False

    def session(self) -> contextlib.AbstractContextManager[Ctx]:
        return session(self.url, self.token, self.user, self.service, self.as_json, self.debug)


P = ParamSpec("P")
R = TypeVar("R")
Verb = Callable[Concatenate[ClientOptions, P], R]


@overload
def client_verb(func: Verb[P, R], /) -> Callable[..., R]: ...
@overload
def client_verb(*, json: bool = True) -> Callable[[Verb[P, R]], Callable[..., R]]: ...
def client_verb(func: Verb[P, R] | None = None, /, *, json: bool = True) -> Any:
    """Give a verb the shared options after its own, so ``vmpooler get debian --json`` and
    ``vmpooler get --json debian`` both parse as before; the verb's first parameter receives them as one
    :class:`ClientOptions`. Typer reads the command's parameters from ``__signature__``."""

    # ``--json`` is left out of verbs that print nothing of their own (``ssh``)
    decorate = shared_options(ClientOptions, [p for p in parameters(ClientOptions) if json or p.name != "as_json"])
    return decorate if func is None else decorate(func)


@contextlib.contextmanager
def session(
    url: str | None, token: str | None, user: str | None, service: str | None, as_json: bool, debug: bool
) -> Iterator[Ctx]:
    """Resolve the connection, run the verb, and turn our exceptions into one stderr line and an exit code."""
    try:
        conn = resolve(url, token, user, service)
        yield Ctx(conn.url, conn.token, conn.user, as_json, debug, conn)
    except (ApiError, ServerUnreachable, ConfigError, UsageProblem) as exc:
        if debug:
            raise
        code = {ServerUnreachable: EXIT_UNREACHABLE, ConfigError: EXIT_USAGE, UsageProblem: EXIT_USAGE}
        message = "; ".join(exc.problems) if isinstance(exc, ConfigError) else in_cli_terms(str(exc))
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code.get(type(exc), EXIT_API)) from None


def emit(ctx: Ctx, data: Any, plain: Callable[[], Sequence[str]], rich: Callable[[], Table] | None = None) -> None:
    if ctx.as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif ctx.people and rich is not None:
        from rich.console import Console

        Console().print(rich())
    else:
        for line in plain():
            typer.echo(line)


def table(*columns: str, rows: Sequence[Sequence[Any]], title: str | None = None) -> Table:
    from rich.table import Table

    out = Table(*columns, title=title)
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


def parse_specs(specs: Sequence[str]) -> dict[str, int]:
    """``["debian-12=2", "centos", "centos"]`` → ``{"debian-12": 2, "centos": 2}``."""
    wanted: dict[str, int] = {}
    for spec in specs:
        name, _, count = spec.partition("=")
        if not name or (count and not count.isdigit()) or count == "0":
            raise typer.BadParameter(f"{spec!r}: expected POOL or POOL=N with N a positive number")
        wanted[name] = wanted.get(name, 0) + (int(count) if count else 1)
    return wanted


def text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def vm_rows(vms: Sequence[Any]) -> list[list[str]]:
    return [[vm.hostname, vm.fqdn, vm.pool] for vm in vms]


__all__ = [
    "ClientOptions",
    "Ctx",
    "DebugOpt",
    "JsonOpt",
    "PasswordOpt",
    "ServiceOpt",
    "SpecArg",
    "TokenOpt",
    "UrlOpt",
    "UsageProblem",
    "UserOpt",
    "client_verb",
    "emit",
    "parse_specs",
    "session",
    "table",
    "text",
    "vm_rows",
]
