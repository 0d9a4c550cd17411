"""Who is an admin and how long a token lives: the backend-independent keys of the ``:auth:`` section.

    :auth:
      provider: ldap
      admins: [alice, bob]      # these users may act on every VM and revoke anyone's token
      token_lifetime: 720       # hours a token stays valid after it is made; unset = forever (the original)
      :ldap:
        admin_group: cn=vmpooler-admins,ou=groups,dc=example,dc=com   # members are admins too

``admins`` is read from the configuration on every request, so removing a name takes effect when the
API restarts. The LDAP group is asked once, when a token is made, and the answer is kept on the
token: leaving the group takes effect with the user's next token (``token_lifetime`` bounds how long
an old one keeps the right). A token's expiry is its creation time plus the lifetime configured now,
so shortening ``token_lifetime`` also shortens the life of the tokens already made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vmpooler.config import describe
from vmpooler.errors import ConfigError

__all__ = ["AuthPolicy", "read_policy"]


class AuthPolicy(BaseModel):
    """The ``:auth:`` keys every backend shares."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    admins: list[str] = Field(
        default_factory=list,
        description="Users who may act on every VM and list or revoke every user's tokens.",
    )
    token_lifetime: float | None = Field(
        None,
        gt=0,
        description="Hours a token is valid after it is made; unset, tokens never expire (as the original).",
    )

    @field_validator("admins", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):  # `admins: alice bob`, as other list keys are read
            return value.split()
        return value

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    @property
    def token_lifetime_seconds(self) -> float | None:
        return None if self.token_lifetime is None else self.token_lifetime * 3600


def read_policy(auth: Mapping[str, Any] | None) -> AuthPolicy:
    """The policy of an ``:auth:`` section (defaults without one); ConfigError naming ``auth.<key>`` when wrong."""
    if not isinstance(auth, Mapping):
        return AuthPolicy()
    try:
        return AuthPolicy.model_validate(auth)
    except ValidationError as exc:
        raise ConfigError(describe(exc, ("auth",))) from exc
