"""Options several commands take, declared once and handed to each command as one object."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
O = TypeVar("O")  # noqa: E741 - the options object


def parameters(options: type[Any]) -> list[inspect.Parameter]:
    """The command-line options of a dataclass whose fields are typed with Typer's ``Annotated`` options:
    one keyword parameter per field, in field order, with the field's default."""
    hints = typing.get_type_hints(options, include_extras=True)
    return [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
        for f in dataclasses.fields(options)
    ]


def shared_options(
    options: Callable[..., O], shared: Sequence[inspect.Parameter]
) -> Callable[[Callable[Concatenate[O, P], R]], Callable[..., R]]:
    """A decorator giving a command the ``shared`` options after its own (``--help`` lists them so, and
    they parse before or after its arguments); the command's first parameter receives them as one
    ``options(**given)``. Typer reads the command's parameters from ``__signature__``."""
    names = {p.name for p in shared}

    def decorate(command: Callable[Concatenate[O, P], R]) -> Callable[..., R]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]  # without the options

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> R:
            given = {name: kwargs.pop(name) for name in names if name in kwargs}
            return command(options(**given), *args, **kwargs)

        params = [*own, *shared]
        run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate
