"""The ``:auth: oidc:`` section: which OIDC issuers' ID tokens (CI jobs') are accepted, and how one maps to an owner.

    :auth:
      provider: ldap
      oidc:
        - issuer: https://token.actions.githubusercontent.com
          audience: https://vmpooler.example.com
          owner_claim: repository          # the VM's owner: "acme/widgets"
          allowed:
            repository_owner: [acme]        # claim -> glob patterns; every listed claim must match one
          group_claim: repository_owner     # its value(s) are checked against `admins`

Each entry is checked once, at start-up; a wrong one names its key path (``auth.oidc[0].issuer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vmpooler.config import describe
from vmpooler.errors import ConfigError

__all__ = ["ACCEPTED_ALGORITHMS", "OidcIssuer", "read_oidc"]

#: asymmetric only: an HMAC algorithm would let anyone holding the public key forge tokens, and
#: ``none`` is no signature at all
ACCEPTED_ALGORITHMS = ("RS256", "ES256")


class OidcIssuer(BaseModel):
    """One trusted issuer of ID tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(
        min_length=1,
        pattern=r"^https?://\S+$",
        description="The `iss` of its tokens, exactly (e.g. `https://token.actions.githubusercontent.com`).",
    )
    audience: list[str] = Field(
        min_length=1, description="The `aud` a token must carry (one of these): what the job asked its token for."
    )
    jwks_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Where its signing keys are; unset: read from `<issuer>/.well-known/openid-configuration`.",
    )
    owner_claim: str = Field("sub", min_length=1, description="The claim whose value becomes the VMs' owner.")
    allowed: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Claim -> glob patterns: a token is accepted only when every listed claim matches one.",
    )
    group_claim: str | None = Field(
        None, description="A claim whose value(s) are matched against `:auth: admins` to make the caller an admin."
    )
    leeway_s: float = Field(30.0, ge=0, le=300, description="Clock skew allowed on `exp`, `nbf` and `iat`.")

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("allowed", mode="before")
    @classmethod
    def _patterns_as_lists(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: [patterns] if isinstance(patterns, str) else patterns for key, patterns in value.items()}
        return value

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def read_oidc(auth: Mapping[str, Any] | None) -> list[OidcIssuer]:
    """The trusted issuers of an ``:auth:`` section (none without one); ConfigError naming ``auth.oidc...``."""
    if not isinstance(auth, Mapping) or auth.get("oidc") is None:
        return []
    section = auth["oidc"]
    if isinstance(section, Mapping):
        section = [section]
    if not isinstance(section, list):
        raise ConfigError(["auth.oidc: must be a list of issuers (each with issuer, audience, owner_claim...)"])
    issuers: list[OidcIssuer] = []
    found: list[str] = []
    for index, entry in enumerate(section):
        try:
            issuers.append(OidcIssuer.model_validate(entry))
        except ValidationError as exc:
            found += describe(exc, ("auth", "oidc", index))
    names = [issuer.issuer for issuer in issuers]
    twice = sorted({name for name in names if names.count(name) > 1})
    found += [f"auth.oidc: issuer {name!r} is listed twice" for name in twice]
    if found:
        raise ConfigError(found)
    return issuers
