"""Graphite sink: plaintext ``path value timestamp`` lines over TCP, sent by a background thread."""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time

from vmpooler.metrics.paths import PathMetrics

log = logging.getLogger("vmpooler.metrics")

#: lines waiting while Graphite is slow or down; beyond this the newest are dropped, not buffered forever
MAX_QUEUED = 10_000


class GraphiteMetrics(PathMetrics):
    """Counters are sent as 1 per event (Graphite sums them with its aggregation rules)."""

    def __init__(self, server: str, port: int = 2003, prefix: str = "vmpooler", timeout: float = 2.0) -> None:
        super().__init__(prefix)
        self.address = (server, port)
        self.timeout = timeout
        self.lines: queue.Queue[str | None] = queue.Queue(MAX_QUEUED)
        self._thread = threading.Thread(target=self._sender, name="graphite-sender", daemon=True)
        self._thread.start()

    def send(self, kind: str, path: str, value: float) -> None:
        # timings are reported in milliseconds to StatsD; Graphite gets the same number
        with contextlib.suppress(queue.Full):
            self.lines.put_nowait(f"{path} {value} {int(time.time())}\n")

    def close(self) -> None:
        self.lines.put(None)
        self._thread.join(self.timeout * 2)

    def _sender(self) -> None:
        conn: socket.socket | None = None
        while True:
            line = self.lines.get()
            if line is None:
                break
            batch = [line]
            while len(batch) < 500:
                try:
                    more = self.lines.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.lines.put(None)
                    break
                batch.append(more)
            try:
                if conn is None:
                    conn = socket.create_connection(self.address, timeout=self.timeout)
                conn.sendall("".join(batch).encode())
            except OSError as exc:
                log.warning("graphite %s:%d unreachable, %d lines dropped: %s", *self.address, len(batch), exc)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(1.0)
        if conn is not None:
            conn.close()
