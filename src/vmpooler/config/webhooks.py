"""The ``:webhooks:`` section: where lifecycle events are POSTed, which ones, signed with which secret.

:webhooks:
  - name: ci-bot
    url: https://ci.example.com/vmpooler-hook
    events: [vm.checked_out, vm.expiring]   # type prefixes; default: every event
    pools: [debian-12]                       # default: every pool
    secret_env: CI_BOT_WEBHOOK_SECRET        # or secret: whsec_...
    timeout_s: 5
    max_attempts: 8
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vmpooler.errors import ConfigError

__all__ = ["WebhookSettings", "secret_key", "webhook_problems"]


class WebhookSettings(BaseModel):
    """One receiver of events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Names the hook in the API and logs."
    )
    url: str = Field(pattern=r"^https?://\S+$", description="Where each event is POSTed as JSON.")
    events: list[str] = Field(
        default_factory=list,
        description="Event type prefixes to send (`vm.`, `vm.checked_out`, `pool.`); empty: every event.",
    )
    pools: list[str] | None = Field(None, description="Send only these pools' events; unset: every pool's.")
    secret: str | None = Field(
        None, min_length=8, description="The signing secret (`whsec_<base64>` as Standard Webhooks, or any text)."
    )
    secret_env: str | None = Field(None, min_length=1, description="The environment variable holding the secret.")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds one delivery may take before it counts as failed.")
    max_attempts: int = Field(8, ge=1, le=30, description="Attempts before the event goes to the dead letters.")
    concurrency: int = Field(
        8, ge=1, le=64, description="Deliveries in flight to this hook at once: a slow receiver waits only for itself."
    )

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookSettings:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret and secret_env")
        return self

    def matches(self, event_type: str, pool: str) -> bool:
        """Whether this hook wants an event of ``event_type`` about ``pool``."""
        if self.pools is not None and pool not in self.pools:
            return False
        return not self.events or any(event_type.startswith(prefix) for prefix in self.events)

    def secret_text(self, env: Mapping[str, str] | None = None) -> str:
        """The secret, read from the environment for ``secret_env``; ConfigError naming the key when unset."""
        if self.secret is not None:
            return self.secret
        value = (os.environ if env is None else env).get(self.secret_env or "")
        if not value:
            raise ConfigError([f"webhooks.{self.name}.secret_env: the variable {self.secret_env} is not set"])
        return value


def secret_key(secret: str) -> bytes:
    """The HMAC key: a ``whsec_`` secret is base64 after its prefix (Standard Webhooks); any other is its UTF-8."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass  # not base64 after all: used as text, as other senders do
    return secret.encode()


def webhook_problems(hooks: list[WebhookSettings], env: Mapping[str, str] | None = None) -> list[str]:
    """What start-up would refuse in ``:webhooks:``: a name used twice, a ``secret_env`` that is not set."""
    names = [hook.name for hook in hooks]
    found = [f"webhooks: the name {name!r} is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    for hook in hooks:
        try:
            hook.secret_text(env)
        except ConfigError as exc:
            found += exc.problems
    return found
