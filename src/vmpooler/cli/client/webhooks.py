"""``vmpooler webhooks``: each hook's deliveries and dead letters (admins), and sending an event again.

vmpooler webhooks                      status per hook: delivered, failed attempts, dead, pending
vmpooler webhooks log NAME             its recent attempts and dead letters
vmpooler webhooks redeliver NAME ID    send event ID to hook NAME again
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer
from typer.core import TyperGroup

from vmpooler.cli.client.session import ClientOptions, client_verb, emit, table

if TYPE_CHECKING:  # the client (and httpx) load when a verb runs, not for `vmpooler --help`
    from vmpooler.client.core import Call


class StatusByDefault(TyperGroup):
    """``vmpooler webhooks [--json ...]`` means ``vmpooler webhooks status [--json ...]``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["status", *args]
        return super().parse_args(ctx, args)


webhooks_app = typer.Typer(help="Webhook deliveries and dead letters (admins).", cls=StatusByDefault)
NameArg = Annotated[str, typer.Argument(help="the hook's name in :webhooks:", metavar="NAME")]


def _overview() -> Call[dict[str, dict[str, Any]]]:
    from vmpooler.client.core import Call

    return Call("GET", "/webhooks", parse=lambda _, body: dict(body["webhooks"]))


def _when(at: Any) -> str:
    try:
        return datetime.datetime.fromtimestamp(float(at), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return ""


@webhooks_app.command("status")
@client_verb
def webhooks_status(opts: ClientOptions) -> None:
    """Each hook: where it sends, delivered, failed attempts, dead letters, pending."""
    with opts.session() as ctx, ctx.client() as client:
        hooks = client.send(_overview())
        rows = [
            [
                name,
                hook["url"],
                hook["stats"].get("delivered", "0"),
                hook["stats"].get("failed_attempts", "0"),
                len(hook["dead_letters"]),
                hook["pending"],
                hook["stats"].get("last_error", ""),
            ]
            for name, hook in hooks.items()
        ]
        emit(
            ctx,
            hooks,
            lambda: [f"{r[0]} {r[1]} delivered={r[2]} failed={r[3]} dead={r[4]} pending={r[5]}" for r in rows],
            lambda: table("hook", "url", "delivered", "failed attempts", "dead", "pending", "last error", rows=rows),
        )


@webhooks_app.command("log")
@client_verb
def webhooks_log(opts: ClientOptions, name: NameArg) -> None:
    """A hook's recent delivery attempts (newest first), then its dead letters."""
    with opts.session() as ctx, ctx.client() as client:
        hook = client.send(_overview()).get(name)
        if hook is None:
            raise typer.BadParameter(f"no webhook named {name!r}", param_hint="NAME")
        rows = [
            [_when(e["at"]), e["id"], e["type"], e["attempt"], e["status"] or "-", e["error"]] for e in hook["recent"]
        ]
        dead = [[_when(d["died_at"]), d["event"]["id"], d["event"]["type"], d["error"]] for d in hook["dead_letters"]]
        emit(
            ctx,
            {"recent": hook["recent"], "dead_letters": hook["dead_letters"]},
            lambda: [" ".join(str(c) for c in r) for r in rows] + [f"DEAD {' '.join(map(str, d))}" for d in dead],
            lambda: table("at", "event", "type", "attempt", "status", "error", rows=rows, title=f"{name}: recent"),
        )


@webhooks_app.command("redeliver")
@client_verb
def webhooks_redeliver(
    opts: ClientOptions,
    name: NameArg,
    event_id: Annotated[str, typer.Argument(help="the event's id (a dead letter's, or one in the stream)")],
) -> None:
    """Send an event to a hook again (it leaves the dead letters)."""
    from vmpooler.client.core import Call

    with opts.session() as ctx, ctx.client() as client:
        path = f"/webhooks/{quote(name, safe='')}/redeliver/{quote(event_id, safe='')}"
        queued = client.send(Call("POST", path, parse=lambda _, body: str(body["queued"])))
        emit(ctx, {"queued": queued}, lambda: [f"queued {queued} for {name}"])
