"""``vmpooler events [--follow]`` (the event stream, resumed after a dropped connection) and ``vmpooler audit``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from vmpooler.cli.client.session import ClientOptions, Ctx, client_verb, emit, table
from vmpooler.errors import ServerUnreachable

#: a stream dropped is taken up again after this long, doubling to RECONNECT_MAX while it keeps failing
RECONNECT_FIRST = 1.0
RECONNECT_MAX = 10.0

ListOpt = Annotated[list[str] | None, typer.Option(help="only these (repeat or comma-separate)")]


@client_verb(json=True)
def events(
    opts: ClientOptions,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep following new events (Ctrl-C ends)")] = False,
    pool: ListOpt = None,
    vm: ListOpt = None,
    owner: ListOpt = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="event types; a trailing '.' matches a prefix (vm.)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="an event id to start after; 0: every event kept (default without --follow)")
    ] = None,
) -> None:
    """The event stream (docs/events.md): what happened so far, or with --follow as it happens."""
    params = {
        name: ",".join(values)
        for name, values in (("pool", pool), ("vm", vm), ("owner", owner), ("type", type_))
        if values
    }
    start = since if since is not None else (None if follow else "0")
    with opts.session() as ctx:
        printer = _printer(ctx)
        try:
            for event in stream_events(ctx, params, start, follow):
                printer(event)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def stream_events(ctx: Ctx, params: dict[str, str], since: str | None, follow: bool) -> Iterator[dict[str, Any]]:
    """Events from ``GET /api/v3/events``; while following, a dropped connection is resumed from the
    last event seen (Last-Event-ID), so none is missed or repeated."""
    import httpx

    from vmpooler.client import core

    last = since
    pause = RECONNECT_FIRST
    if not follow:
        params = {**params, "once": "1"}  # the server ends the stream after the events that exist now
    # keep-alives come every 15 s (events_keepalive_seconds): a minute of silence is a dead connection
    timeout = httpx.Timeout(10.0, read=60.0)
    with httpx.Client(base_url=core.base_url(ctx.url), headers=core.headers(ctx.token), timeout=timeout) as http:
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            try:
                with http.stream("GET", "/events", params=params, headers=headers) as reply:
                    if reply.status_code != 200:
                        reply.read()
                        _raise_for_error(reply)
                    pause = RECONNECT_FIRST
                    for event in _parse(reply.iter_lines()):
                        last = str(event.get("id") or last)
                        yield event
            except (httpx.TransportError, ServerUnreachable) as exc:
                if not follow:
                    raise ServerUnreachable(f"cannot reach {ctx.url}: {exc}") from exc
                typer.echo(f"stream dropped ({exc.__class__.__name__}); resuming in {pause:.0f}s", err=True)
                time.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX)
            else:
                if not follow:
                    return
                typer.echo("stream ended by the server (restarting?); resuming", err=True)
                time.sleep(RECONNECT_FIRST)


def _raise_for_error(reply: Any) -> None:
    from vmpooler.client import core

    if reply.is_success:
        return
    try:
        body: Any = reply.json()
    except ValueError:
        body = reply.text
    raise core.api_error(reply.status_code, body, reply.reason_phrase)


def _parse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            event = json.loads("\n".join(data))
            data = []
            if isinstance(event, dict) and event.get("ok") is not False:
                yield event


def _printer(ctx: Ctx) -> Callable[[dict[str, Any]], None]:
    if ctx.as_json:
        return lambda event: typer.echo(json.dumps(event))
    if ctx.people:
        from rich.console import Console

        console = Console()
        colours = {"vm.failed": "red", "pool.breaker_opened": "red", "vm.expiring": "yellow", "vm.ready": "green"}

        def rich_line(event: dict[str, Any]) -> None:
            colour = colours.get(str(event.get("type")), "cyan")
            console.print(
                f"[dim]{_when(event.get('at'))}[/] [{colour}]{event.get('type')}[/] {_subject(event)}", highlight=False
            )

        return rich_line
    return lambda event: typer.echo(f"{_when(event.get('at'))} {event.get('type')} {_subject(event)}")


def _subject(event: dict[str, Any]) -> str:
    parts = [f"{key}={event[key]}" for key in ("pool", "vm", "owner") if event.get(key)]
    if event.get("data"):
        parts.append(json.dumps(event["data"], separators=(",", ":")))
    return " ".join(parts)


def _when(at: Any) -> str:
    try:
        return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        return "?"


@client_verb
def audit(
    opts: ClientOptions,
    by: Annotated[str | None, typer.Option("--by", help="only this user's requests")] = None,
    vm: Annotated[str | None, typer.Option(help="only requests about this VM")] = None,
    since: Annotated[str | None, typer.Option(help="from this time (epoch seconds or ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="up to this time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="newest entries shown")] = 100,
) -> None:
    """The audit trail, newest first (an admin's token; docs/audit.md)."""
    import httpx

    from vmpooler.client import core

    query = {k: v for k, v in {"user": by, "vm": vm, "since": since, "until": until}.items() if v}
    query["limit"] = str(limit)
    with opts.session() as ctx:
        with httpx.Client(base_url=core.base_url(ctx.url), headers=core.headers(ctx.token), timeout=10) as http:
            try:
                reply = http.get("/audit", params=query)
            except httpx.TransportError as exc:
                raise ServerUnreachable(f"cannot reach {ctx.url}: {exc}") from exc
            _raise_for_error(reply)
        entries: list[dict[str, Any]] = reply.json().get("entries", [])
        rows = [
            [
                _when(e.get("at")),
                *(e.get(key) for key in ("user", "token", "address", "method", "route")),
                e.get("vm") or e.get("pool") or e.get("target"),
                e.get("status"),
            ]
            for e in entries
        ]
        emit(
            ctx,
            entries,
            lambda: [" ".join(str(c or "-") for c in row) for row in rows],
            lambda: table("when", "user", "token", "address", "method", "route", "on", "status", rows=rows),
        )


__all__ = ["audit", "events"]
