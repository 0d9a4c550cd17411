"""The EC2 provider's settings: the ``:providers: :ec2:`` section and the per-pool keys it reads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError
from vmpooler.providers.base import ProviderOptions

__all__ = ["EC2Options", "EC2PoolOptions", "pool_options"]

Seconds = Annotated[float, Field(gt=0)]


class EC2Options(ProviderOptions):
    """The ``:providers: :ec2:`` section.

    Credentials come from boto3's usual chain (environment, shared files, instance role) unless
    given here; they are secrets and never shown by ``describe()``. ``region`` may be left to the
    environment (``AWS_REGION``/``AWS_DEFAULT_REGION``) or the profile. ``endpoint_url`` points the
    provider at an EC2-compatible API (a simulator, another cloud).
    """

    region: str | None = None
    profile: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
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


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class EC2PoolOptions(BaseModel):
    """The per-pool keys of an EC2 pool (``PoolTarget.provider_options``); other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: AMI ids in order of preference; the first that exists and is available is launched.
    #: Without it the pool's ``template`` is the AMI id.
    amis: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    instance_type: str = Field("t3.micro", min_length=1)
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
        problems = "; ".join(
            f"pools.{pool.name}.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise PermanentProviderError(f"ec2: invalid pool options: {problems}") from exc
