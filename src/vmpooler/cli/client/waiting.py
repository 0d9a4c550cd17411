"""``vmpooler get --wait SECONDS``: the checkout waits its turn on the server while this shows the place.

The checkout request is held by the server (docs/waiting.md); beside it, this polls the pool's queue and
shows the place on stderr: a Rich progress line on a terminal, a plain line whenever the place changes
otherwise (so scripts and logs see it too).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from vmpooler.errors import ApiError, ServerUnreachable

if TYPE_CHECKING:
    from vmpooler.client import Client
    from vmpooler.client.core import VM

#: seconds between looks at the queue
POLL_SECONDS = 1.0


def checkout_waiting(
    client_for: Callable[[], Client], wanted: dict[str, int], seconds: float, poll: float = POLL_SECONDS
) -> list[VM]:
    """Check ``wanted`` out, waiting up to ``seconds`` for the turn; shows the place meanwhile."""
    pool = next(iter(wanted))
    with ThreadPoolExecutor(1) as runner, client_for() as checkout_client, client_for() as queue_client:
        taken = runner.submit(checkout_client.checkout, wanted, seconds)
        if sys.stderr.isatty():
            _progress_line(queue_client, pool, seconds, taken, poll)
        else:
            _plain_lines(queue_client, pool, taken, poll)
        return taken.result()


def _place(client: Client, pool: str) -> str:
    try:
        queue = client.queue(pool)
    except (ApiError, ServerUnreachable):
        return "waiting"
    place = queue.get("position")
    where = f"place {place} of {queue.get('waiting')}" if place else f"{queue.get('waiting')} waiting"
    return f"{where} for {pool}"


def _plain_lines(client: Client, pool: str, taken: Future[list[VM]], poll: float) -> None:
    shown = ""
    wait([taken], timeout=min(poll, 0.3))  # the request joins its queue first
    while not taken.done():
        line = _place(client, pool)
        if line != shown:
            print(line, file=sys.stderr, flush=True)
            shown = line
        wait([taken], timeout=poll)


def _progress_line(client: Client, pool: str, seconds: float, taken: Future[list[VM]], poll: float) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"waiting for {pool}", total=seconds)
        wait([taken], timeout=min(poll, 0.3))
        while not taken.done():
            progress.update(task, description=_place(client, pool), completed=time.monotonic() - started)
            wait([taken], timeout=poll)
