"""The EC2 API as the provider uses it: one lazily made boto3 client, calls in threads, AWS errors as ours.

botocore retries throttling (``RequestLimitExceeded``, ``Throttling``, ``ThrottlingException``, ...)
and connection failures itself, with exponential backoff and full jitter, in its ``standard`` and
``adaptive`` retry modes; ``max_attempts`` bounds the tries. What is still failing after that
comes out of here as a ``ProviderError``: a ``PermanentProviderError`` when the request itself is
wrong (an unknown AMI, subnet or security group, rejected credentials) so the manager stops
retrying, a ``ProviderTimeout`` when EC2 did not answer in time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    WaiterError,
)

from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout
from vmpooler.providers.ec2.options import EC2Options

__all__ = ["EC2Client", "Response", "aws_error_code"]

log = logging.getLogger("vmpooler.providers.ec2")

Response = dict[str, Any]

#: AWS refuses who is asking, not what is asked: no retry helps until an operator fixes the credentials
_CREDENTIAL_CODES = frozenset(
    {
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "UnauthorizedOperation",
        "OptInRequired",
        "Blocked",
    }
)
#: the request names something that does not exist or is malformed (the part of the code before the dot)
_PERMANENT_FAMILIES = frozenset(
    {
        "InvalidAMIID",
        "InvalidSubnetID",
        "InvalidSubnet",
        "InvalidGroup",
        "InvalidGroupId",
        "InvalidSecurityGroupID",
        "InvalidKeyPair",
        "InvalidInstanceType",
        "InvalidBlockDeviceMapping",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MissingParameter",
        "UnknownParameter",
        "Unsupported",
        "UnsupportedOperation",
        "VPCIdNotSpecified",
    }
)
_VERBS = {"NotFound": "does not exist", "Malformed": "is malformed", "Unavailable": "is not available"}
_LOCAL_CONFIG_ERRORS = (NoCredentialsError, PartialCredentialsError, ProfileNotFound, ParamValidationError)


class EC2Client:
    """Runs EC2 API calls for one provider in worker threads; the boto3 client is made on first use.

    boto3 clients are thread-safe once made, but making one is not, hence the lock. ``subjects``
    maps an AWS error family (``InvalidAMIID``) to the configuration it blames (``pool 'x' ami
    'ami-1'``) so the operator reads which key to fix.
    """

    def __init__(self, provider_name: str, options: EC2Options) -> None:
        self.provider_name = provider_name
        self.options = options
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def boto(self) -> Any:
        """The botocore client, made now if need be (blocking: it reads AWS config files)."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        opts = self.options
        secret = {
            key: value.get_secret_value()
            for key, value in (
                ("aws_access_key_id", opts.aws_access_key_id),
                ("aws_secret_access_key", opts.aws_secret_access_key),
                ("aws_session_token", opts.aws_session_token),
            )
            if value is not None
        }
        config = Config(
            retries={"mode": opts.retry_mode, "total_max_attempts": opts.max_attempts},
            connect_timeout=opts.connect_timeout,
            read_timeout=opts.read_timeout,
            user_agent_extra="vmpooler",
        )
        try:
            session = boto3.session.Session(profile_name=opts.profile, region_name=opts.region, **secret)
            return session.client("ec2", endpoint_url=opts.endpoint_url, config=config)
        except NoRegionError as exc:
            raise PermanentProviderError(
                f"ec2 provider {self.provider_name!r}: no region: set `region` under :providers: or AWS_REGION"
            ) from exc
        except BotoCoreError as exc:
            raise self._translate("connect", exc, {}) from exc

    async def call(self, operation: str, subjects: Mapping[str, str] | None = None, **params: Any) -> Response:
        """``operation`` (a boto3 method name such as ``run_instances``) with ``params``, in a thread."""
        return await asyncio.to_thread(self._call, operation, subjects or {}, params)

    def _call(self, operation: str, subjects: Mapping[str, str], params: dict[str, Any]) -> Response:
        try:
            response: Response = getattr(self.boto, operation)(**params)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(operation, exc, subjects) from exc
        return response

    async def pages(self, operation: str, **params: Any) -> list[Response]:
        """Every page of a paginated ``operation``, fetched in one thread."""
        return await asyncio.to_thread(self._pages, operation, params)

    def _pages(self, operation: str, params: dict[str, Any]) -> list[Response]:
        try:
            return list(self.boto.get_paginator(operation).paginate(**params))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(operation, exc, {}) from exc

    async def wait(self, waiter: str, timeout: float, **params: Any) -> None:
        """Poll with boto3's ``waiter`` (e.g. ``volume_available``) for at most ``timeout`` seconds."""
        delay = 2
        config = {"Delay": delay, "MaxAttempts": max(1, int(timeout // delay))}
        await asyncio.to_thread(self._wait, waiter, timeout, config, params)

    def _wait(self, waiter: str, timeout: float, config: dict[str, int], params: dict[str, Any]) -> None:
        try:
            self.boto.get_waiter(waiter).wait(WaiterConfig=config, **params)
        except WaiterError as exc:
            if "Max attempts exceeded" in str(exc):
                raise ProviderTimeout(f"ec2: {waiter} not reached within {timeout:.0f}s") from exc
            raise ProviderError(f"ec2: {waiter} failed: {exc}") from exc
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(waiter, exc, {}) from exc

    def close(self) -> None:
        """Release the client's connections; the next call makes a new client."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _translate(self, operation: str, exc: Exception, subjects: Mapping[str, str]) -> ProviderError:
        if isinstance(exc, ClientError):
            return self._translate_client_error(operation, exc, subjects)
        if isinstance(exc, _LOCAL_CONFIG_ERRORS):
            return PermanentProviderError(f"ec2 provider {self.provider_name!r}: {operation}: {exc}")
        if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
            return ProviderTimeout(f"ec2 {operation}: no answer: {exc}")
        return ProviderError(f"ec2 {operation} failed: {exc}")

    def _translate_client_error(self, operation: str, exc: ClientError, subjects: Mapping[str, str]) -> ProviderError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        detail = f"{code}: {error.get('Message', '')}".rstrip(": ")
        family, _, kind = code.partition(".")
        if code in _CREDENTIAL_CODES:
            return PermanentProviderError(
                f"ec2 provider {self.provider_name!r}: AWS refused the credentials for {operation} ({detail})"
            )
        if family in subjects:
            return PermanentProviderError(f"{subjects[family]} {_VERBS.get(kind, 'was refused')} ({detail})")
        if family in _PERMANENT_FAMILIES:
            return PermanentProviderError(f"ec2 {operation} refused ({detail})")
        # throttling that outlasted the retries, capacity shortages, AWS's own 5xx: a later try may work
        log.debug("ec2 %s failed with %s after botocore's retries", operation, code)
        return ProviderError(f"ec2 {operation} failed ({detail})")


def aws_error_code(error: BaseException) -> str | None:
    """The AWS error code (``InvalidInstanceID.NotFound``) behind a translated error, if AWS sent one."""
    cause = error.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "")) or None
    return None
