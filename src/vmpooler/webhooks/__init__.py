"""Signed webhooks: lifecycle events from the event stream POSTed to configured receivers, at least once.

``signing`` makes and checks the Standard Webhooks signature; ``delivery`` is one attempt (an HTTP POST)
and the retry schedule; ``worker`` reads a hook's consumer group and delivers with bounded concurrency.
"""

from vmpooler.webhooks.signing import sign, verify
from vmpooler.webhooks.worker import HookWorker, WebhookDispatcher

__all__ = ["HookWorker", "WebhookDispatcher", "sign", "verify"]
