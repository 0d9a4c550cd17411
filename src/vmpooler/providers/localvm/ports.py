"""Hands out one free host port per VM for user-mode forwarding, safely across processes.

A port is reserved by a file ``<state_dir>/.ports/<port>`` naming its owner (the VM's metadata
file), created under an exclusive ``flock`` after a bind test shows nobody listens there. The
reservation outlives the process that made it, so two managers sharing a state directory never
hand out one port twice; a reservation whose owner file is gone (a crash between the VM's removal
and the port's release) is taken back by the next allocation.
"""

from __future__ import annotations

import contextlib
import fcntl
import random
import socket
from collections.abc import Iterator
from pathlib import Path

from vmpooler.errors import ProviderError


class PortAllocator:
    """Ports in ``[low, high]`` on ``address``, reserved in ``directory`` (blocking: use a thread)."""

    def __init__(self, directory: Path, low: int, high: int, address: str = "127.0.0.1") -> None:
        self.directory = directory
        self.low = low
        self.high = high
        self.address = address

    def allocate(self, owner: Path) -> int:
        """Reserve a free port for ``owner``; ProviderError when the whole range is taken."""
        with self._locked():
            ports = list(range(self.low, self.high + 1))
            start = random.randrange(len(ports))  # spreads VMs over the range; not security
            for port in ports[start:] + ports[:start]:
                reservation = self.directory / str(port)
                if reservation.exists() and not self._stale(reservation):
                    continue
                if not self._bindable(port):
                    continue
                reservation.write_text(str(owner))
                return port
        raise ProviderError(
            f"no free port in {self.low}-{self.high} on {self.address} (reservations in {self.directory})"
        )

    def release(self, port: int, owner: Path) -> None:
        """Free ``port`` if ``owner`` holds it."""
        with self._locked():
            reservation = self.directory / str(port)
            with contextlib.suppress(FileNotFoundError):
                if reservation.read_text() == str(owner):
                    reservation.unlink()

    @staticmethod
    def _stale(reservation: Path) -> bool:
        try:
            return not Path(reservation.read_text()).exists()
        except FileNotFoundError:
            return True

    def _bindable(self, port: int) -> bool:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # the hypervisor's forward sets SO_REUSEADDR too: connections in TIME_WAIT must not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.address, port))
            except OSError:
                return False
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with (self.directory / ".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released on close, or when the process dies
                yield
        except OSError as exc:
            raise ProviderError(f"port reservations in {self.directory}: {exc}") from exc
