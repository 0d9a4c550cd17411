"""Help as people read it, at no start-up cost: plain click-style help without typer's type placeholders.

Typer writes ``--url <str>`` and ``--json <bool>``; ours reads ``--url URL`` and ``--json``. Rich (for
tables and progress) is imported only when something is printed with it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

_TYPE_PLACEHOLDER = re.compile(r"\s<[^<>]*>(\.\.\.)?$")


class PlainHelpCommand(TyperCommand):
    """A command whose help names each option's value (``--url URL``) instead of its Python type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
                param.metavar = max(param.opts, key=len).lstrip("-").upper().replace("-", "_")

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                args.append((_TYPE_PLACEHOLDER.sub("", record[0]), record[1]))
            else:
                opts.append(record)
        for title, records in (("Arguments", args), ("Options", opts)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def plain_help(app: typer.Typer) -> None:
    """Give every command of ``app`` (and of its sub-apps) the plain help; call after registering them."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = PlainHelpCommand
        # click would cut the listing's line at 45 characters, mid-sentence; the first paragraph wraps instead
        if command.short_help is None and command.callback is not None:
            command.short_help = _first_paragraph(command.callback.__doc__)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None
            plain_help(group.typer_instance)


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


class LazyConsole:
    """A Rich console on stderr, made on first use (importing Rich costs ~60 ms that `--help` need not pay)."""

    def __init__(self) -> None:
        self._console: Any = None

    def print(self, *objects: Any, **options: Any) -> None:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        self._console.print(*objects, **options)


__all__ = ["LazyConsole", "PlainHelpCommand", "plain_help"]
