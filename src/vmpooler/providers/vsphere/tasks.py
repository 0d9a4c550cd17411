"""Awaits a vCenter task without blocking the event loop: poll its state, sleep, poll again, until a deadline."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyVmomi import vim, vmodl

from vmpooler.errors import ProviderTimeout
from vmpooler.providers.vsphere.connection import Content, SessionPool
from vmpooler.providers.vsphere.faults import translate
from vmpooler.providers.vsphere.inventory import retrieve

__all__ = ["wait_for_task"]

log = logging.getLogger(__name__)

_FIRST_POLL = 0.05  # seconds; most tasks of a healthy vCenter finish within a few polls
_MAX_POLL = 1.0
# read as properties: the whole ``info`` also carries objects (a reverted snapshot's entity) that
# some servers type loosely and pyVmomi then refuses to deserialize
_TASK_PATHS = ["info.state", "info.error", "info.result"]


async def wait_for_task(
    sessions: SessionPool,
    task: vim.Task,
    doing: str,
    timeout: float,
    tolerate: tuple[type[vmodl.MethodFault], ...] = (),
) -> Any:
    """The task's result once it succeeds; the fault translated to a ProviderError if it fails.

    A fault of a ``tolerate``d type counts as success (returns None): "already powered off", say.
    ProviderTimeout after ``timeout`` seconds, when the task is also asked to cancel.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = _FIRST_POLL
    while True:
        state = await sessions.run(lambda content: _state(content, task), doing)
        if state.get("info.state") == vim.TaskInfo.State.success:
            return state.get("info.result")
        if state.get("info.state") == vim.TaskInfo.State.error:
            fault = state.get("info.error")
            if isinstance(fault, tolerate):
                return None
            raise translate(fault or RuntimeError("the task failed without saying why"), doing) from fault
        remaining = deadline - loop.time()
        if remaining <= 0:
            await _cancel(sessions, task, doing)
            raise ProviderTimeout(f"vSphere: {doing}: the vCenter task did not finish within {timeout:g}s")
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_POLL)


def _state(content: Content, task: vim.Task) -> dict[str, Any]:
    found = retrieve(content, [task], vim.Task, _TASK_PATHS)
    return found[0] if found else {}


async def _cancel(sessions: SessionPool, task: vim.Task, doing: str) -> None:
    try:
        await sessions.run(lambda _: task.Cancel(), f"cancelling the task of {doing}")
    except Exception as exc:  # many tasks cannot be cancelled; the time-out is what the caller needs to hear
        log.info("vSphere: %s: could not cancel the late task: %s", doing, exc)
