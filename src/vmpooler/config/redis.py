"""The ``:redis:`` section: one server or a Sentinel group, with optional TLS and an ACL user.

* No ``:redis:`` section (and no ``REDIS_*`` variable): ``vmpooler serve`` starts an embedded Redis of
  its own. A section that names no ``server`` (``port: 6379`` only, say) means the original's default
  server, ``localhost``: an operator's own Redis is never silently replaced by a private one.
* ``server``/``port``: one Redis (or a cloud endpoint that fails over behind one address).
* ``sentinels`` + ``master_name``: the client asks the sentinels for the master and asks again after
  a failover; ``server``/``port`` must then be left out. ``sentinel_username``/``sentinel_password``
  authenticate to the sentinels when they have their own ACL.
* ``tls``: connections (to Redis and to the sentinels) use TLS; ``tls_ca_file`` is the CA that signed
  the server certificate (default: the system's), ``tls_cert_file``/``tls_key_file`` a client
  certificate when Redis requires one, ``tls_verify: false`` skips certificate and host checks.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, PrivateAttr, SecretStr, model_validator

from vmpooler.config.tls import file_problems, pair_problems

__all__ = ["RedisSettings", "SentinelAddress"]

DEFAULT_SENTINEL_PORT = 26379


class SentinelAddress(BaseModel):
    """One entry of ``sentinels``: ``"host:port"`` (``"[::1]:26379"`` for IPv6), ``"host"``, or a mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(DEFAULT_SENTINEL_PORT, ge=1, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        text = data.strip()
        host, colon, port = text.rpartition(":")
        if not colon or text.endswith("]") or (":" in host and not host.startswith("[")):
            return {"host": text.removeprefix("[").removesuffix("]")}  # no port: "host", "[::1]" or "::1"
        # a numeric port becomes an int here so a range error shows it as the number it is
        return {"host": host.removeprefix("[").removesuffix("]"), "port": int(port) if port.isdigit() else port}


class RedisSettings(BaseModel):
    """Where the data lives: one server (`localhost` when the section names none, as the original), or the
    master a Sentinel group names; without the section, `vmpooler serve` runs a private Redis of its own.
    Optional TLS, and an ACL user."""

    model_config = ConfigDict(extra="ignore")

    server: str | None = None  # one Redis (or a cloud endpoint that fails over behind one address)
    port: int = Field(6379, ge=1, le=65535)
    username: str | None = None  # an ACL user (Redis 6+); none: the default user
    password: SecretStr | None = None
    db: int = Field(0, ge=0)
    #: the sentinels to ask for the master, each "host:port" (port 26379 when left out) or {host, port};
    #: the master is asked for again after a failover. Leave out ``server`` when set.
    sentinels: list[SentinelAddress] = Field(default_factory=list)
    master_name: str | None = Field(None, min_length=1)  # the master's name in the sentinels (required with them)
    sentinel_username: str | None = None  # when the sentinels have ACL users of their own
    sentinel_password: SecretStr | None = None  # when the sentinels require a password
    tls: bool = False  # TLS to Redis and to the sentinels
    tls_ca_file: str | None = None  # the CA that signed the server's certificate (PEM); none: the system's CAs
    tls_cert_file: str | None = None  # a client certificate (PEM), when Redis requires one (tls-auth-clients)
    tls_key_file: str | None = None  # its private key, unless the certificate file holds it
    tls_verify: bool = True  # false skips checking the server's certificate and host name (tests only)
    data_ttl: int = Field(168, ge=1)  # hours a destroyed VM's record is kept
    connection_pool_size: int = Field(10, ge=1)
    connection_pool_timeout: int = Field(5, ge=1)
    reconnect_attempts: int = Field(10, ge=0)
    socket_timeout: float = Field(5.0, gt=0)  # seconds; no Redis call waits longer

    #: why this Redis is the one used, for the start-up log line
    _reason: str = PrivateAttr("")

    @model_validator(mode="wrap")
    @classmethod
    def _originals_default_server(cls, data: Any, handler: ModelWrapValidatorHandler[RedisSettings]) -> RedisSettings:
        settings = handler(data)
        if isinstance(data, dict) and data and settings.server is None and not settings.sentinels:
            # a :redis: section (or REDIS_* variable) is about the operator's Redis: the original's default
            settings.server = "localhost"
            settings._reason = ":redis: names no server: the original's default, localhost"
        return settings

    def because(self, reason: str) -> RedisSettings:
        """A copy whose start-up log line gives ``reason`` for using it."""
        copy = self.model_copy()
        copy._reason = reason
        return copy

    def describe(self) -> str:
        """Which Redis this is and why, for the start-up log."""
        if self.sentinels:
            sentinels = ", ".join(f"{s.host}:{s.port}" for s in self.sentinels)
            return f"Redis master {self.master_name!r} of sentinels {sentinels} (:redis: sentinels)"
        if self.server is None:
            return "an embedded Redis (no :redis: section and no REDIS_SERVER)"
        return f"Redis at {self.server}:{self.port} ({self._reason or 'named by :redis: server or REDIS_SERVER'})"

    def password_value(self) -> str | None:
        return self.password.get_secret_value() if self.password else None

    def sentinel_password_value(self) -> str | None:
        return self.sentinel_password.get_secret_value() if self.sentinel_password else None

    @property
    def embedded(self) -> bool:
        """True when nothing names a Redis, so the service runs its own."""
        return self.server is None and not self.sentinels

    def problems(self, where: str = "redis") -> list[str]:
        """What the field types cannot say: keys that only make sense together, and unreadable files."""
        problems = []
        if self.sentinels and self.master_name is None:
            problems.append(f"{where}.master_name: required when {where}.sentinels is set")
        if self.master_name is not None and not self.sentinels:
            problems.append(f"{where}.sentinels: required when {where}.master_name is set")
        if self.sentinels and self.server is not None:
            problems.append(
                f"{where}.server: leave it out when {where}.sentinels is set (the sentinels name the master)"
            )
        files = {
            "tls_ca_file": self.tls_ca_file,
            "tls_cert_file": self.tls_cert_file,
            "tls_key_file": self.tls_key_file,
        }
        if not self.tls:
            # a TLS file with TLS off would silently send the password in clear text
            problems += [f"{where}.{key}: set, but {where}.tls is false" for key, path in files.items() if path]
        problems += file_problems(f"{where}.tls_ca_file", self.tls_ca_file)
        problems += pair_problems(
            f"{where}.tls_cert_file", self.tls_cert_file, f"{where}.tls_key_file", self.tls_key_file
        )
        return problems
