"""Logging set-up: plain or JSON lines, each carrying the API request id when there is one."""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: the id of the API request being served (set by the API's middleware), for every log line it causes
request_id: ContextVar[str] = ContextVar("request_id", default="")

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"

# every C0 and C1 control character, DEL, and the Unicode line and paragraph separators: a path such
# as /vm/%0a... must not start a line of its own that reads like another log entry
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {0x2028: "\\u2028", 0x2029: "\\u2029"}
_CONTROL |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``)."""
    return text.translate(_CONTROL)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        record.request_id = rid
        record.request_tag = f" [{rid}]" if rid else ""
        return True


class _EscapingFormatter(logging.Formatter):
    """The message with its control characters escaped, then the traceback (whose newlines are ours) as is."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(record.getMessage())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and exception text."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _BatchWriter:
    """Writes the records the event loop hands over, in batches, from a thread of its own.

    The loop only appends to a deque: waking a writer thread for every record (a ``QueueHandler``'s
    queue) cost a futex call and a GIL hand-off per log line, 12 % of a checkout's CPU under load
    (py-spy, bench/checkout.py). The first record into an empty deque wakes the writer, which waits
    ``interval`` for more, then writes them all; an idle process's writer never wakes."""

    def __init__(self, handlers: list[logging.Handler], interval: float = 0.05) -> None:
        self.records: collections.deque[logging.LogRecord] = collections.deque()
        self.handlers = handlers
        self.interval = interval
        self._owner = os.getpid()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="vmpooler-log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def hand_over(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        # counted after the append: the writer takes a record it popped meanwhile; one behind others is
        # taken with them (the first of them woke it, or it is still draining)
        if len(self.records) == 1:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            if not self._stopping:
                time.sleep(self.interval)  # the rest of the batch
            self._wake.clear()
            self._write()
        self._write()

    def _write(self) -> None:
        batch = []
        while self.records:
            batch.append(self.records.popleft())
        if not batch:
            return
        for handler in self.handlers:
            mine = [record for record in batch if record.levelno >= handler.level and handler.filter(record)]
            if isinstance(handler, logging.StreamHandler):
                _write_lines(handler, mine)
            else:
                for record in mine:
                    handler.handle(record)

    def stop(self) -> None:
        # a writer inherited through fork has no thread here, and its records were the parent's to write
        if os.getpid() == self._owner:
            self._stopping = True
            self._wake.set()
            self._thread.join()


def _write_lines(handler: logging.StreamHandler[Any], records: list[logging.LogRecord]) -> None:
    """The records as one write and one flush: a StreamHandler flushes after every line, a syscall each."""
    lines = []
    for record in records:
        try:
            lines.append(handler.format(record) + handler.terminator)
        except Exception:
            handler.handleError(record)
    if not lines:
        return
    with handler.lock or contextlib.nullcontext():
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:
            handler.handleError(records[-1])


class _Handoff(logging.handlers.QueueHandler):
    """Formats (escaped, in the caller's context) and copies a record as QueueHandler does, then hands it over."""

    def __init__(self, writer: _BatchWriter) -> None:
        super().__init__(queue.SimpleQueue())  # unused: enqueue goes to the writer's deque
        self.writer = writer

    def enqueue(self, record: logging.LogRecord) -> None:
        self.writer.hand_over(record)


def setup_logging(level: int = logging.INFO, fmt: str = "plain", logfile: str | None = None) -> list[str]:
    """Configure the root logger; returns warnings (e.g. an unwritable logfile) for the caller to show.

    Records are handed to a background thread that writes them, so a slow terminal or disk never
    blocks the event loop (a checkout's log line cost ~12 % of its latency when written inline)."""
    warnings: list[str] = []
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        try:
            handlers.append(logging.FileHandler(logfile))
        except OSError as exc:
            warnings.append(f"cannot write logfile {logfile}: {exc}; logging to stderr only")
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else logging.Formatter(PLAIN_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
    writer = _BatchWriter(handlers)
    front = _Handoff(writer)
    # the writer gets the bare message, escaped; its handlers apply the real format
    front.setFormatter(_EscapingFormatter("%(message)s"))
    # the request id is read here, in the request's context, before the record crosses threads
    front.addFilter(_RequestIdFilter())
    logging.basicConfig(level=level, handlers=[front], force=True)
    writer.start()
    _WRITERS.append(writer)
    atexit.register(stop_logging)
    return warnings


#: the writer threads setup_logging started in this process (a forked child starts its own)
_WRITERS: list[_BatchWriter] = []


def stop_logging() -> None:
    """Write out every record handed over and stop the writer threads: for atexit, and for a forked child
    that ends with os._exit (which runs no atexit handler, so its last lines would be lost)."""
    while _WRITERS:
        _WRITERS.pop().stop()
