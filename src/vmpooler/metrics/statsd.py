"""StatsD sink: one UDP datagram per event (``name:value|c``, ``|g``, ``|ms``), fire and forget."""

from __future__ import annotations

import socket

from vmpooler.metrics.paths import PathMetrics

TYPES = {"counter": "c", "gauge": "g", "timing": "ms"}


class StatsdMetrics(PathMetrics):
    def __init__(self, server: str, port: int = 8125, prefix: str = "vmpooler") -> None:
        super().__init__(prefix)
        self.address = (server, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def send(self, kind: str, path: str, value: float) -> None:
        number = int(value) if float(value).is_integer() else value
        self.sock.sendto(f"{path}:{number}|{TYPES[kind]}".encode(), self.address)
