"""The EC2 provider's settings: the ``:providers: :ec2:`` section and the per-pool keys it reads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from vmpooler.config import describe
from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError
from vmpooler.providers.base import ProviderOptions

__all__ = ["REJECTED_KEYS", "EC2Options", "EC2PoolOptions", "pool_options"]

Seconds = Annotated[float, Field(gt=0)]

#: keys the original vmpooler-provider-ec2 (or its GCE sibling) reads that have no EC2 meaning here: refused,
#: with the reason, rather than dropped
REJECTED_KEYS = {
    "provision": "the original's SSH provisioning of new instances is not built in; bake it into the AMI",
    "project": "a GCE key; EC2 has no projects (the account and `region` say where instances go)",
    "dns_zone_resource_name": "no DNS records are managed; a pool's domain comes from its :dns_configs: entry",
    "domain": "a pool's domain comes from its :dns_configs: entry (dns_plugin), not from the provider",
}


def _refuse(key: str, value: Any) -> Any:
    if value is not None:
        raise PydanticCustomError("not_read", "not read by the EC2 provider: {why}", {"why": REJECTED_KEYS[key]})
    return value


class _RefusesUnusedKeys(BaseModel):
    """The keys in REJECTED_KEYS, each an error when given."""

    provision: Any = None
    project: Any = None
    dns_zone_resource_name: Any = None
    domain: Any = None

    @field_validator(*REJECTED_KEYS)
    @classmethod
    def _not_read(cls, value: Any, info: Any) -> Any:
        return _refuse(str(info.field_name), value)


class EC2Options(ProviderOptions, _RefusesUnusedKeys):
    """The ``:providers: :ec2:`` section.

    ``amisize``, ``zone`` and ``volume_size`` are the defaults of the pools' keys of the same name (the
    original's provider-level keys); ``ABS_AWS_ACCESS_KEY``/``ABS_AWS_SECRET_KEY`` (the original's names,
    also read from the environment) are ``aws_access_key_id``/``aws_secret_access_key``.

    Credentials come from boto3's usual chain (environment, shared files, instance role) unless
    given here; they are secrets and never shown by ``describe()``. ``region`` may be left to the
    environment (``AWS_REGION``/``AWS_DEFAULT_REGION``) or the profile. ``endpoint_url`` points the
    provider at an EC2-compatible API (a simulator, another cloud).
    """

    region: str | None = None
    profile: str | None = None
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("aws_access_key_id", "ABS_AWS_ACCESS_KEY")
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("aws_secret_access_key", "ABS_AWS_SECRET_KEY")
    )
    aws_session_token: SecretStr | None = None
    endpoint_url: str | None = None
    #: total tries per request, the first included; throttling and connection errors are retried
    max_attempts: int = Field(5, ge=1, le=20)
    retry_mode: Literal["standard", "adaptive"] = "standard"
    connect_timeout: Seconds = 10.0
    read_timeout: Seconds = 60.0
    #: seconds the ``ready_port`` probe waits for a TCP connection
    ready_probe_timeout: Seconds = 2.0
    #: seconds ``create_disk`` waits for a new volume to become available, then attached
    volume_wait_timeout: Seconds = 120.0
    #: the instance type of pools that set none (the original's ``amisize``)
    instance_type: str = Field("t3.micro", min_length=1, validation_alias=AliasChoices("instance_type", "amisize"))
    #: the availability zone of pools that set none (the region's choice when unset)
    zone: str | None = Field(None, min_length=1)
    #: root volume size in GiB of pools that set none
    volume_size: int | None = Field(None, ge=1)


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class EC2PoolOptions(_RefusesUnusedKeys):
    """The per-pool keys of an EC2 pool (``PoolTarget.provider_options``); the original's ``amisize`` is
    ``instance_type``; keys with no EC2 meaning (REJECTED_KEYS) are refused; other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: AMI ids in order of preference; the first that exists and is available is launched.
    #: Without it the pool's ``template`` is the AMI id.
    amis: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    #: unset: the provider's ``instance_type`` (``amisize``)
    instance_type: str | None = Field(None, min_length=1, validation_alias=AliasChoices("instance_type", "amisize"))
    #: the availability zone instances launch in (unset: the provider's ``zone``, else the region's choice)
    zone: str | None = Field(None, min_length=1)
    subnet_id: str | None = None
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    #: a TCP port that must accept a connection before the VM counts as ready
    ready_port: int | None = Field(None, ge=1, le=65535)
    #: report the public address instead of the private one
    use_public_ip: bool = False
    #: root volume size in GiB (the AMI's own size when unset)
    volume_size: int | None = Field(None, ge=1)

    @field_validator("amis", "security_group_ids", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_values_as_text(cls, value: Any) -> Any:
        # YAML turns `team: 42` or `temporary: yes` into numbers and booleans; EC2 tags are text
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


def pool_options(pool: PoolTarget) -> EC2PoolOptions:
    """The pool's EC2 keys, validated; a bad value is a PermanentProviderError naming the key."""
    try:
        return EC2PoolOptions.model_validate(pool.provider_options)
    except ValidationError as exc:
        problems = "; ".join(describe(exc, ("pools", pool.name), wording="terse"))
        raise PermanentProviderError(f"ec2: invalid pool options: {problems}") from exc
