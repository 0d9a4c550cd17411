"""A bounded pool of vCenter sessions that run blocking pyVmomi work in threads and log in again when lost.

A ``Session`` is one SOAP stub and the login on it. It connects on first use, never in a
constructor, so an unreachable vCenter at start-up only fails the calls made while it is down.
When vCenter forgets the session (``NotAuthenticated``: it expired or vCenter restarted) or the
connection drops, the same stub logs in again and the work is tried once more. Logging in again on
the same stub, rather than opening a new one, keeps every managed object reference the work holds
valid: references belong to vCenter's inventory, not to the session.

``SessionPool.run`` borrows a free session for one piece of blocking work and runs it on the pool's
own threads (one per session). The session goes back to the pool when its thread finishes, even if
the awaiting coroutine was cancelled meanwhile, so no two threads ever share a session.
"""

# pyVmomi's data-object constructors and pyVim's connect helpers carry no annotations

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
from collections.abc import Callable
from typing import TypeVar

from pyVim.connect import SmartStubAdapter
from pyVmomi import vim, vmodl
from pyVmomi.SoapAdapter import SoapStubAdapter

from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout
from vmpooler.providers.vsphere.faults import SESSION_LOST, fault_message, translate
from vmpooler.providers.vsphere.options import VSphereOptions

__all__ = ["Content", "Session", "SessionPool"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Content = vim.ServiceInstanceContent


class Session:
    """One vCenter login; ``run`` calls ``work(content)`` in the calling thread (see the module docstring)."""

    def __init__(self, options: VSphereOptions) -> None:
        self.options = options
        self._stub: SoapStubAdapter | None = None
        self._content: Content | None = None

    @property
    def address(self) -> str:
        return f"{self.options.server}:{self.options.port}"

    def run(self, work: Callable[[Content], T], doing: str) -> T:
        """Blocking: ``work(content)``, re-established and retried once when the session was lost."""
        try:
            try:
                return work(self._connected())
            except SESSION_LOST as exc:
                if self._content is None or isinstance(exc, TimeoutError | ssl.SSLCertVerificationError):
                    raise  # never connected, or a retry would only wait (or be refused) again
                log.info(
                    "vSphere %s: session lost while %s (%s); logging in again", self.address, doing, fault_message(exc)
                )
                self._login(reconnect=True)
                return work(self._connected())
        except Exception as exc:
            raise translate(exc, doing) from exc

    def close(self) -> None:
        """Blocking: log out, if logged in; errors are ignored (the session dies with vCenter anyway)."""
        content, self._content = self._content, None
        if content is not None and content.sessionManager is not None:
            try:
                content.sessionManager.Logout()
            except Exception as exc:
                log.debug("vSphere %s: logout failed: %s", self.address, exc)
        self._drop_connections()
        self._stub = None

    def _drop_connections(self) -> None:
        if self._stub is not None:
            self._stub.DropConnections()

    def _connected(self) -> Content:
        if self._content is None:
            self._connect()
        assert self._content is not None
        return self._content

    def _connect(self) -> None:
        options = self.options
        log.info("vSphere %s: connecting as %s", self.address, options.username)
        # what SmartConnect does, with the stub kept so that a lost session can log in on it again
        self._stub = SmartStubAdapter(
            host=options.server,
            port=options.port,
            # explicit: left without a context, pyVmomi skips verification for localhost on its own
            sslContext=None if options.insecure else ssl.create_default_context(),
            disableSslCertValidation=options.insecure,
            httpConnectionTimeout=options.http_timeout,
        )
        content = vim.ServiceInstance("ServiceInstance", self._stub).RetrieveContent()
        self._content = content
        try:
            self._login(reconnect=False)
        except BaseException:
            self._content = None
            self._drop_connections()
            raise

    def _login(self, reconnect: bool) -> None:
        assert self._content is not None and self._content.sessionManager is not None
        if reconnect:
            # pooled HTTP connections to a restarted vCenter are dead; open fresh ones
            self._drop_connections()
            if self._logged_in():
                return  # only the connection dropped; logging in on a live session is refused
        try:
            self._content.sessionManager.Login(self.options.username, self.options.password.get_secret_value(), None)
        except vim.fault.InvalidLogin as exc:
            raise PermanentProviderError(
                f"vCenter rejected the login for user {self.options.username!r}: {fault_message(exc)}"
            ) from exc

    def _logged_in(self) -> bool:
        """Whether vCenter still knows this session (read as a property: an unset one must not be fetched)."""
        assert self._content is not None
        collector = vmodl.query.PropertyCollector
        spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(obj=self._content.sessionManager)],
            propSet=[collector.PropertySpec(type=vim.SessionManager, pathSet=["currentSession"])],
        )
        try:
            result = self._content.propertyCollector.RetrievePropertiesEx([spec], collector.RetrieveOptions())
        except vim.fault.NotAuthenticated:
            return False
        found = result.objects if result is not None else []
        return any(prop.name == "currentSession" and prop.val is not None for item in found for prop in item.propSet)


class SessionPool:
    """``connection_pool_size`` sessions, each lent to one piece of blocking work at a time."""

    def __init__(self, name: str, options: VSphereOptions) -> None:
        self.options = options
        size = options.connection_pool_size
        self._sessions = [Session(options) for _ in range(size)]
        self._idle = list(self._sessions)
        self._lock = threading.Lock()  # guards _idle: sessions come back from worker threads
        self._free: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"vsphere-{name}")
        self._address = f"{options.server}:{options.port}"
        self._closed = False

    async def run(self, work: Callable[[Content], T], doing: str) -> T:
        """``work(content)`` on a free session, in a worker thread; ProviderError on any failure."""
        if self._closed:
            raise ProviderError(f"vSphere: {doing}: the provider is closed")
        free = self._semaphore()
        try:
            async with asyncio.timeout(self.options.connection_pool_timeout):
                await free.acquire()
        except TimeoutError as exc:
            raise ProviderTimeout(
                f"vSphere: {doing}: no free vCenter connection within {self.options.connection_pool_timeout}s "
                f"(connection_pool_size={self.options.connection_pool_size})"
            ) from exc
        with self._lock:
            session = self._idle.pop()
        try:
            job = self._threads.submit(session.run, work, doing)
        except RuntimeError as exc:  # closed meanwhile
            self._give_back(session)
            raise ProviderError(f"vSphere: {doing}: the provider is closed") from exc
        job.add_done_callback(lambda _: self._give_back(session))
        return await asyncio.wrap_future(job)

    async def close(self) -> None:
        """Log the sessions out once their work is done and stop the threads; later calls fail with ProviderError."""
        if self._closed:
            return
        self._closed = True
        free = self._semaphore()
        try:
            async with asyncio.timeout(self.options.connection_pool_timeout):
                for _ in self._sessions:
                    await free.acquire()
        except TimeoutError:
            log.warning("vSphere %s: closing with work still running; its sessions are left to expire", self._address)
        with self._lock:
            idle = list(self._idle)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, s.close) for s in idle), return_exceptions=True)
        self._threads.shutdown(wait=False)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:
            # a semaphore belongs to one event loop; a provider reused under a new loop starts afresh
            with self._lock:
                self._free = asyncio.Semaphore(len(self._idle))
                self._loop = loop
        return self._free

    def _give_back(self, session: Session) -> None:
        """Called in the worker thread when its work is done."""
        with self._lock:
            self._idle.append(session)
            free, loop = self._free, self._loop
        if free is None or loop is None:
            return
        try:
            loop.call_soon_threadsafe(free.release)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting for the session any more
