"""LDAP authentication as the original does it: a simple bind as the user, or a service account's search and a bind.

Configuration is the ``:auth:`` → ``:ldap:`` section. Files written for the original are read as they are:

* ``base`` and ``user_object`` take a string or a list. A string of several DNs separated by spaces
  (what the original's ``LDAP_BASE`` allowed) is read as several bases; a space after a comma or
  inside a value (``ou=Build Team,dc=example,dc=com``) does not split.
* ``encryption`` is ``start_tls`` (the default), ``simple_tls`` (LDAPS) or ``none``, spelled with or
  without a leading colon, or the original's mapping ``{method: :start_tls, tls_options: {...}}``.
  Of ``tls_options`` only ``ca_file`` and ``verify_mode`` (0 = do not verify) are read; the TLS version
  is negotiated (the Python default allows TLS 1.2 and later), so ``ssl_version`` is ignored.
* ``service_account_hash`` ``{user_dn, password}`` switches to the original's ``bind_as``: bind as the
  service account, search each base for ``(<user_object>=<user>)`` and bind as the entry found.
* ``admin_group`` (ours) is the DN of a ``groupOfNames`` or ``groupOfUniqueNames`` entry: a user whose
  DN is one of its ``member`` or ``uniqueMember`` values is an admin. It is read right after the
  user's successful bind, on the same connection and as that user (so users must be allowed to read
  the group, as most directories allow), with a base-scope search of the group for the user's DN;
  the server compares DNs, so case and spacing do not matter. Nested groups are not followed.

Without a service account every (base, user_object) pair is tried as ``<user_object>=<user>,<base>``,
in order, and the first successful bind wins. User names are escaped in DNs and filters, an empty
password is refused without asking the server (LDAP would treat it as an anonymous bind and succeed),
and passwords are never logged.

``timeout`` bounds every network step (connecting, the TLS handshake, each answer awaited), so one
``authenticate`` takes at most a few multiples of it; a server that cannot be asked raises
``AuthUnavailable`` naming ``host:port`` and the step that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import re
import ssl
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any, Final

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from vmpooler.auth.base import AuthBackend, Login
from vmpooler.errors import AuthUnavailable

__all__ = ["Encryption", "LdapAuth", "LdapSettings", "ServiceAccount"]

log = logging.getLogger(__name__)

# LDAP result codes (RFC 4511 §4.1.9) that mean "the directory cannot answer now", not "wrong password".
_UNAVAILABLE_RESULTS: Final = {1: "operationsError", 51: "busy", 52: "unavailable", 80: "other"}
# bind results a user's input explains (invalidCredentials, noSuchObject, invalidDNSyntax): not worth a warning
_USER_ERRORS: Final = {49, 32, 34}

# an attribute type: a name (uid, sAMAccountName) or an OID (0.9.2342.19200300.100.1.1)
_ATTRIBUTE_TYPE: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)*")
# where a string of several bases splits: spaces not after a comma, followed by the next DN's "attr="
_BASE_SEPARATOR: Final = re.compile(r"(?<!,)\s+(?=(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)=)")
# a comma between RDNs with the spaces around it (an escaped "\," is part of a value)
_DN_SEPARATOR: Final = re.compile(r"(?<!\\)\s*,\s*")


def _checked_dn(dn: str) -> str:
    """``dn`` without spaces around its separating commas (which ldap3 rejects and servers ignore), if valid."""
    normal = _DN_SEPARATOR.sub(",", dn.strip())
    try:
        parse_dn(normal)
    except LDAPException as exc:
        raise PydanticCustomError("ldap_dn", "not a valid DN ({reason})", {"reason": str(exc)}) from exc
    return normal


def _checked_attribute_type(name: str) -> str:
    if not _ATTRIBUTE_TYPE.fullmatch(name):
        raise PydanticCustomError("ldap_attribute", "not an LDAP attribute name")
    return name


DN = Annotated[str, AfterValidator(_checked_dn)]
AttributeType = Annotated[str, AfterValidator(_checked_attribute_type)]


class Encryption(StrEnum):
    START_TLS = "start_tls"  # plain LDAP port, upgraded with the StartTLS operation before any bind
    SIMPLE_TLS = "simple_tls"  # LDAPS: TLS from the first byte
    NONE = "none"


class ServiceAccount(BaseModel):
    """``service_account_hash``: the entry that may search for users, and its password."""

    model_config = ConfigDict(extra="forbid")

    user_dn: DN
    password: SecretStr = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_keys(cls, data: Any) -> Any:
        return _unsymbol(data) if isinstance(data, Mapping) else data


class LdapSettings(BaseModel):
    """The ``:ldap:`` section of ``:auth:``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(389, ge=1, le=65535)
    base: list[DN] = Field(min_length=1)
    user_object: list[AttributeType] = Field(default_factory=lambda: ["uid"], min_length=1)
    encryption: Encryption = Encryption.START_TLS
    verify_certificates: bool = True  # for start_tls and simple_tls
    ca_file: FilePath | None = None  # PEM bundle to verify the server against; else the system's CAs
    timeout: float = Field(5.0, gt=0)  # seconds, for each network step
    service_account_hash: ServiceAccount | None = None
    admin_group: DN | None = None  # a group whose member (or uniqueMember) DNs are admins

    @model_validator(mode="before")
    @classmethod
    def _read_encryption_mapping(cls, data: Any) -> Any:
        """The original's ``encryption: {method: ..., tls_options: {...}}`` as our flat keys."""
        if not isinstance(data, Mapping) or not isinstance(data.get("encryption"), Mapping):
            return data
        out = dict(data)
        encryption = _unsymbol(data["encryption"])
        out["encryption"] = encryption.get("method")
        tls_options = encryption.get("tls_options")
        if isinstance(tls_options, Mapping):
            tls_options = _unsymbol(tls_options)
            if tls_options.get("ca_file") is not None:
                out.setdefault("ca_file", tls_options["ca_file"])
            if tls_options.get("verify_mode") is not None:  # OpenSSL::SSL::VERIFY_NONE is 0, VERIFY_PEER 1
                out.setdefault("verify_certificates", str(tls_options["verify_mode"]) not in {"0", "VERIFY_NONE"})
        return out

    @field_validator("host")
    @classmethod
    def _host_not_url(cls, value: str) -> str:
        if "://" in value:
            raise PydanticCustomError("host_is_url", "must be a host name, not a URL (set port and encryption instead)")
        return value.strip()

    @field_validator("base", mode="before")
    @classmethod
    def _bases(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in _BASE_SEPARATOR.split(value.strip()) if part]
        return value

    @field_validator("user_object", mode="before")
    @classmethod
    def _user_objects(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("encryption", mode="before")
    @classmethod
    def _encryption_spelling(cls, value: Any) -> Any:
        if value is None:  # the original: `encryption || {method: :start_tls}`
            return Encryption.START_TLS
        if isinstance(value, str):
            return value.strip().lstrip(":").lower().replace("-", "_")
        return value


class LdapAuth(AuthBackend):
    """Checks a user's password by binding to an LDAP directory (see the module docstring)."""

    name = "ldap"

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self._where = f"{settings.host}:{settings.port}"
        self._tls: ldap3.Tls | None = None
        if settings.encryption is not Encryption.NONE:
            self._tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if settings.verify_certificates else ssl.CERT_NONE,
                ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
                sni=None if _is_ip(settings.host) else settings.host,
            )

    async def authenticate(self, user: str, password: str) -> bool:
        return await self.login(user, password) is not None

    async def login(self, user: str, password: str) -> Login | None:
        if not user or not password:
            return None
        # ldap3 is blocking; every socket operation in the thread is bounded by the timeout
        return await asyncio.to_thread(self._login, user, password)

    # --- the blocking part, run in a worker thread -----------------------------------------------------

    def _login(self, user: str, password: str) -> Login | None:
        with self._connection() as conn:
            if self.settings.service_account_hash is None:
                candidates = [
                    f"{user_object}={escape_rdn(user)},{base}"
                    for base in self.settings.base
                    for user_object in self.settings.user_object
                ]
            else:
                candidates = self._search(conn, self.settings.service_account_hash, user)
            for dn in candidates:
                if self._bind(conn, dn, password):
                    log.debug("LDAP bind as %s succeeded", dn)
                    return Login(user, self._in_admin_group(conn, dn))
            log.debug("LDAP: no bind succeeded for user %r", user)
            return None

    def _in_admin_group(self, conn: ldap3.Connection, user_dn: str) -> bool:
        """Whether ``admin_group`` lists ``user_dn``, asked as the user just bound."""
        group = self.settings.admin_group
        if group is None:
            return False
        value = escape_filter_chars(user_dn)
        with self._step("admin group search"):
            conn.search(
                group,
                f"(|(member={value})(uniqueMember={value}))",
                search_scope=ldap3.BASE,
                attributes=ldap3.NO_ATTRIBUTES,
                time_limit=math.ceil(self.settings.timeout),
            )
        self._check_available(conn, "admin group search")
        result = conn.result.get("result") if conn.result else None
        if result not in (0, None):  # noSuchObject here is a wrong admin_group or one the user may not read
            log.warning(
                "LDAP server %s: cannot read auth.ldap.admin_group %s as %s: %s",
                self._where,
                group,
                user_dn,
                conn.result.get("description"),
            )
        return any(item.get("type") == "searchResEntry" for item in conn.response or [])

    def _search(self, conn: ldap3.Connection, account: ServiceAccount, user: str) -> list[str]:
        """The DN of the first entry each (base, user_object) search finds, as the original's ``bind_as``."""
        if not self._bind(conn, account.user_dn, account.password.get_secret_value()):
            raise AuthUnavailable(
                f"LDAP server {self._where}: the service account {account.user_dn} was refused "
                f"({conn.result.get('description')}); check auth.ldap.service_account_hash"
            )
        found: list[str] = []
        for base in self.settings.base:
            for user_object in self.settings.user_object:
                search_filter = f"({user_object}={escape_filter_chars(user)})"
                with self._step("search"):
                    conn.search(
                        base,
                        search_filter,
                        search_scope=ldap3.SUBTREE,
                        attributes=ldap3.NO_ATTRIBUTES,
                        time_limit=math.ceil(self.settings.timeout),
                    )
                self._check_available(conn, "search")
                entries = [item["dn"] for item in conn.response or [] if item.get("type") == "searchResEntry"]
                if entries and entries[0] not in found:
                    found.append(entries[0])
        return found

    def _bind(self, conn: ldap3.Connection, dn: str, password: str) -> bool:
        conn.user, conn.password = dn, password
        with self._step("bind"):
            ok = bool(conn.bind(read_server_info=False))
        self._check_available(conn, "bind")
        if not ok and conn.result.get("result") not in _USER_ERRORS:
            log.warning("LDAP server %s refused the bind as %s: %s", self._where, dn, conn.result.get("description"))
        return ok

    def _check_available(self, conn: ldap3.Connection, step: str) -> None:
        result = conn.result.get("result") if conn.result else None
        if result in _UNAVAILABLE_RESULTS:
            message = conn.result.get("message") or ""
            raise AuthUnavailable(
                f"LDAP server {self._where}: {step} failed: {_UNAVAILABLE_RESULTS[result]} {message}".rstrip()
            )

    @contextlib.contextmanager
    def _connection(self) -> Iterator[ldap3.Connection]:
        settings = self.settings
        server = ldap3.Server(
            settings.host,
            port=settings.port,
            use_ssl=settings.encryption is Encryption.SIMPLE_TLS,
            tls=self._tls,
            get_info=ldap3.NONE,
            connect_timeout=settings.timeout,
        )
        conn = ldap3.Connection(
            server,
            authentication=ldap3.SIMPLE,
            client_strategy=ldap3.SYNC,
            # No receive_timeout: ldap3 packs it into SO_RCVTIMEO as whole seconds (a float raises
            # struct.error). Unset, the socket keeps connect_timeout, so that bounds every later step too:
            # the TLS handshake and each send and receive (tests/integration/test_ldap.py checks this).
            receive_timeout=None,
            auto_referrals=False,
            read_only=True,
            raise_exceptions=False,
        )
        try:
            with self._step("connect" if settings.encryption is not Encryption.SIMPLE_TLS else "connect (TLS)"):
                conn.open(read_server_info=False)
            if settings.encryption is Encryption.START_TLS:
                with self._step("StartTLS"):
                    conn.start_tls(read_server_info=False)
            yield conn
        finally:
            with contextlib.suppress(LDAPException, OSError):
                conn.unbind()

    @contextlib.contextmanager
    def _step(self, step: str) -> Iterator[None]:
        """Translates what ldap3 and the socket raise into AuthUnavailable naming the server and the step."""
        try:
            yield
        except (LDAPException, OSError) as exc:
            raise AuthUnavailable(f"LDAP server {self._where}: {step} failed: {_describe(exc)}") from exc


def _unsymbol(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """Ruby-symbol keys (``:user_dn``) as plain ones."""
    return {key.lstrip(":") if isinstance(key, str) else key: value for key, value in mapping.items()}


def _describe(exc: BaseException) -> str:
    """An ldap3 error's message without the tuple reprs its exception factories wrap it in."""
    text = str(exc)
    while len(text) > 5 and text[:2] in {"('", '("'} and text[-3:] in {"',)", '",)'}:
        text = text[2:-3]
    return text


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
