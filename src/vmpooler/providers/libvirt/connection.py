"""One libvirt connection, opened on first use and again when lost; blocking calls run in threads, bounded in time.

libvirt connections are thread-safe, so every call shares one. Nothing connects in a constructor: a
daemon that is down at start-up only fails the calls made while it is down. When a call finds the
connection gone (the daemon restarted, the socket closed), the connection is opened again and the
call is tried once more, unless the caller said the call must not be repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt  # type: ignore[import-untyped,unused-ignore]

from vmpooler.errors import ProviderTimeout
from vmpooler.providers.libvirt import faults

__all__ = ["Connection", "Work"]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: blocking work on an open ``libvirt.virConnect`` (the binding is untyped, hence Any)
Work = Callable[[Any], T]


class Connection:
    """The connection to the daemon at ``uri``; ``run`` does one piece of blocking work on it in a thread."""

    def __init__(self, uri: str, connect_timeout: float, call_timeout: float) -> None:
        self.uri = uri
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self._conn: Any = None
        self._opening = threading.Lock()  # one open at a time; held while the daemon is slow to answer
        self._swapping = threading.Lock()  # guards ``_conn`` itself; held for an instant only

    async def run(
        self,
        work: Work[T],
        doing: str,
        *,
        timeout: float | None = None,
        repeatable: bool = True,
        permanent_by_default: bool = False,
    ) -> T:
        """``work(conn)`` in a thread; its libvirt errors as ProviderErrors (see ``faults.translate``).

        ``repeatable``: the work may run again after a lost connection (a read, or a change that
        fails harmlessly when repeated). The time limit includes opening the connection.
        """
        limit = timeout or self.call_timeout
        if self._conn is None:
            limit += self.connect_timeout
        try:
            async with asyncio.timeout(limit):
                return await asyncio.to_thread(self._run, work, doing, repeatable, permanent_by_default)
        except TimeoutError as exc:
            # the thread cannot be interrupted; it finishes (or fails) on its own and its result is dropped
            raise ProviderTimeout(f"libvirt {self.uri}: {doing}: no answer within {limit:g}s") from exc

    async def close(self) -> None:
        with self._swapping:
            conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(_close_quietly, conn)

    def _run(self, work: Work[T], doing: str, repeatable: bool, permanent_by_default: bool) -> T:
        conn = None
        try:
            conn = self._connected()
            try:
                return work(conn)
            except faults.LibvirtError as exc:
                if not (repeatable and faults.connection_lost(exc)):
                    raise
                log.info("libvirt %s: connection lost while %s (%s); connecting again", self.uri, doing, exc)
                self._forget(conn)
                conn = self._connected()
                return work(conn)
        except faults.LibvirtError as exc:
            if conn is not None and faults.connection_lost(exc):
                self._forget(conn)
            raise faults.translate(exc, doing, permanent_by_default=permanent_by_default) from exc

    def _connected(self) -> Any:
        conn = self._conn
        if conn is not None and _alive(conn):
            return conn
        with self._opening:
            conn = self._conn
            if conn is not None:
                if _alive(conn):
                    return conn  # another thread opened it meanwhile
                self._forget(conn)
            log.info("libvirt %s: connecting", self.uri)
            # libvirt prints every error to stderr unless a handler is set; ours are raised instead
            libvirt.registerErrorHandler(_ignore_error, None)
            try:
                conn = libvirt.open(self.uri)
            except faults.LibvirtError as exc:
                raise faults.translate(exc, f"connecting to {self.uri}") from exc
            with self._swapping:
                self._conn = conn
            return conn

    def _forget(self, conn: Any) -> None:
        """Close ``conn`` unless another thread has already replaced it (a connection is closed once)."""
        with self._swapping:
            if self._conn is not conn:
                return
            self._conn = None
        _close_quietly(conn)


def _alive(conn: Any) -> bool:
    """The binding's own view (no round trip); a connection another thread has just closed is not alive."""
    try:
        return bool(conn.isAlive())
    except (faults.LibvirtError, TypeError):
        return False


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(faults.LibvirtError):
        conn.close()


def _ignore_error(context: object, error: object) -> None:
    return None
