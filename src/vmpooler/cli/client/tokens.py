"""``vmpooler token get|list|status|delete``: API tokens, traded for a user name and password."""

from __future__ import annotations

from typing import Annotated

import typer

from vmpooler.cli.client.session import (
    ClientOptions,
    PasswordOpt,
    client_verb,
    emit,
    table,
    text,
)

token_app = typer.Typer(help="Get, list, inspect and delete API tokens.", no_args_is_help=True)


def _password(password: str | None) -> str:
    return password if password is not None else str(typer.prompt("password", hide_input=True))


@token_app.command("get")
@client_verb
def token_get(opts: ClientOptions, password: PasswordOpt = None) -> None:
    """Trade your user name and password for a new token (shown only this once)."""
    with opts.session() as ctx, ctx.client() as client:
        new = client.create_token(ctx.need_user(), _password(password))
        emit(ctx, {"token": new}, lambda: [new])


@token_app.command("list")
@client_verb
def token_list(opts: ClientOptions, password: PasswordOpt = None) -> None:
    """Your tokens (by hint), when each was made and last used."""
    with opts.session() as ctx, ctx.client() as client:
        tokens = client.list_tokens(ctx.need_user(), _password(password))
        rows = [[hint, t.get("created"), t.get("last")] for hint, t in tokens.items()]
        emit(
            ctx,
            tokens,
            lambda: [f"{r[0]} created {r[1]} last {r[2]}" for r in rows],
            lambda: table("token", "created", "last used", rows=rows),
        )


@token_app.command("status")
@client_verb
def token_status(
    opts: ClientOptions,
    which: Annotated[str | None, typer.Argument(help="the token (default: yours)")] = None,
) -> None:
    """A token's user, dates and running VMs."""
    with opts.session() as ctx, ctx.client() as client:
        info = client.token_info(which or ctx.need_token())
        lines = [f"{k}: {text(v)}" for k, v in info.items()]
        emit(ctx, info, lambda: lines, lambda: table("field", "value", rows=[[k, text(v)] for k, v in info.items()]))


@token_app.command("delete")
@client_verb
def token_delete(
    opts: ClientOptions,
    which: Annotated[str | None, typer.Argument(help="the token (default: yours)")] = None,
    password: PasswordOpt = None,
) -> None:
    """Delete one of your tokens."""
    with opts.session() as ctx, ctx.client() as client:
        client.delete_token(which or ctx.need_token(), ctx.need_user(), _password(password))
        emit(ctx, {"ok": True}, lambda: ["deleted"])


__all__ = ["token_app"]
