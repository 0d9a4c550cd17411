"""Starts a real OpenLDAP ``slapd`` for tests, unprivileged, entirely inside a temporary directory.

``running_slapd(workdir)`` (a context manager) or ``start_slapd(workdir)`` + ``Slapd.stop()``:

1. writes a self-signed certificate for ``localhost``/``127.0.0.1`` (``openssl req``);
2. builds a ``cn=config`` directory with ``slapadd -n0 -F <workdir>/slapd.d`` from an LDIF: the core,
   cosine and inetorgperson schemas, one mdb database for ``dc=example,dc=com`` under
   ``<workdir>/data`` with a root DN, TLS certificate and key, and access rules under which anonymous
   clients may only bind (a search needs a bound user, as with a real directory);
3. loads the entries with ``slapadd -n1``: users under two bases, ``ou=people`` and
   ``ou=contractors``, one of them named by ``cn`` instead of ``uid``, names that need escaping in a
   DN (a comma) and in a filter (``*``), a service account allowed to search, and under ``ou=groups``
   two admin groups for ``:ldap: admin_group``: ``ADMIN_GROUP`` (a groupOfNames: alice and smith)
   and ``UNIQUE_ADMIN_GROUP`` (a groupOfUniqueNames: carol), outside both user bases so no existing
   search finds them;
4. runs ``slapd -d 0 -F <dir> -h "ldap://127.0.0.1:P/ ldaps://127.0.0.1:P2/"`` in the foreground
   (``-d`` keeps it from forking; without ``-u``/``-g`` it stays the user running the tests, root or
   not) and waits until a bind as the root DN succeeds.

Needs the Debian packages ``slapd`` and ``ldap-utils`` (``scripts/ensure-system-deps.sh``);
``slapd_missing()`` says what is absent so a test can skip. On Ubuntu an enforcing AppArmor profile
for /usr/sbin/slapd may forbid the temporary directory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3

from vmpooler.store.embedded import free_port

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
CONTRACTORS = f"ou=contractors,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=vmpooler-svc,{SUFFIX}"
SERVICE_PASSWORD = "svc-secret"
GROUPS = f"ou=groups,{SUFFIX}"
ADMIN_GROUP = f"cn=vmpooler-admins,{GROUPS}"
UNIQUE_ADMIN_GROUP = f"cn=vmpooler-unique-admins,{GROUPS}"

_SCHEMAS = ("core", "cosine", "inetorgperson")
_BINARIES = ("slapd", "slapadd", "openssl")


@dataclass(frozen=True)
class LdapUser:
    """A person in the test directory: log in as ``name`` with ``password``."""

    name: str
    password: str
    base: str
    user_object: str  # the attribute naming the entry: uid or cn

    @property
    def dn(self) -> str:
        return f"{self.user_object}={_escape_dn_value(self.name)},{self.base}"


USERS: dict[str, LdapUser] = {
    "alice": LdapUser("alice", "alice-pw", PEOPLE, "uid"),
    "dave": LdapUser("dave", "dave-pw", CONTRACTORS, "uid"),
    "carol": LdapUser("carol", "carol-pw", CONTRACTORS, "cn"),  # no uid at all
    "smith": LdapUser("smith, john", "smith-pw", PEOPLE, "uid"),  # a comma: escaped in the DN
    "star": LdapUser("star*", "star-pw", PEOPLE, "uid"),  # a '*': escaped in a search filter
}
#: the keys of USERS listed in ADMIN_GROUP (member) and UNIQUE_ADMIN_GROUP (uniqueMember)
ADMIN_MEMBERS = ("alice", "smith")
UNIQUE_ADMIN_MEMBERS = ("carol",)


@dataclass
class Slapd:
    """A running slapd and what a test needs to reach it."""

    port: int  # ldap:// (plain, StartTLS available)
    ldaps_port: int  # ldaps:// (TLS from the first byte)
    workdir: Path
    process: subprocess.Popen[bytes]
    ca_file: Path  # the server's self-signed certificate, usable as the CA to verify it
    host: str = "127.0.0.1"
    users: dict[str, LdapUser] = field(default_factory=lambda: dict(USERS))

    @property
    def log_file(self) -> Path:
        return self.workdir / "slapd.log"

    def ldap_config(self, **overrides: Any) -> dict[str, Any]:
        """A raw ``:auth:`` → ``:ldap:`` mapping for this server: both bases, uid and cn, no TLS."""
        config: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "base": [PEOPLE, CONTRACTORS],
            "user_object": ["uid", "cn"],
            "encryption": "none",
            "timeout": 2.0,
        }
        config.update(overrides)
        return config

    def service_account(self) -> dict[str, str]:
        return {"user_dn": SERVICE_DN, "password": SERVICE_PASSWORD}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def slapd_missing() -> str | None:
    """Why slapd cannot be started here (a missing program), or None."""
    absent = [name for name in _BINARIES if _binary(name) is None]
    return f"not installed: {', '.join(absent)} (Debian packages slapd, openssl)" if absent else None


@contextlib.contextmanager
def running_slapd(workdir: Path) -> Iterator[Slapd]:
    server = start_slapd(workdir)
    try:
        yield server
    finally:
        server.stop()


def start_slapd(workdir: Path, timeout: float = 15.0) -> Slapd:
    workdir.mkdir(parents=True, exist_ok=True)
    config_dir, data_dir = workdir / "slapd.d", workdir / "data"
    config_dir.mkdir()
    data_dir.mkdir()
    cert, key = _self_signed_certificate(workdir)
    (workdir / "config.ldif").write_text(_config_ldif(workdir, data_dir, cert, key))
    (workdir / "data.ldif").write_text(_data_ldif())
    _run(_need("slapadd"), "-n0", "-F", str(config_dir), "-l", str(workdir / "config.ldif"))
    _run(_need("slapadd"), "-n1", "-F", str(config_dir), "-l", str(workdir / "data.ldif"))

    port, ldaps_port = free_port(), free_port()
    urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"
    with (workdir / "slapd.log").open("wb") as log:
        process = subprocess.Popen(
            [_need("slapd"), "-d", "0", "-F", str(config_dir), "-h", urls],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Slapd(port=port, ldaps_port=ldaps_port, workdir=workdir, process=process, ca_file=cert)
    try:
        _wait_until_answering(server, timeout)
    except BaseException:
        server.kill()
        raise
    return server


# --- the pieces --------------------------------------------------------------------------------------


def _wait_until_answering(server: Slapd, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"slapd exited with {server.process.returncode}:\n{log}")
        try:
            probe = ldap3.Connection(
                ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE, connect_timeout=1),
                user=ROOT_DN,
                password=ROOT_PASSWORD,
                receive_timeout=1,
            )
            if probe.bind():
                probe.unbind()
                return
            last_error = str(probe.result)
        except ldap3.core.exceptions.LDAPException as exc:
            last_error = str(exc)
        time.sleep(0.05)
    raise TimeoutError(f"slapd on port {server.port} not answering after {timeout}s: {last_error}")


def _self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    _run(
        _need("openssl"),
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    )
    return cert, key


def _config_ldif(workdir: Path, data_dir: Path, cert: Path, key: Path) -> str:
    schemas = _schema_dir()
    includes = "\n".join(f"include: file://{schemas / name}.ldif" for name in _SCHEMAS)
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcArgsFile: {workdir}/slapd.args
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {_module_dir()}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PASSWORD}
olcDbDirectory: {data_dir}
olcDbMaxSize: 16777216
olcAccess: {{0}}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"""


def _data_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {CONTRACTORS}\nobjectClass: organizationalUnit\nou: contractors",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: vmpooler-svc\nuserPassword: {_ssha(SERVICE_PASSWORD)}",
    ]
    for user in USERS.values():
        naming = f"uid: {user.name}\ncn: {user.name}" if user.user_object == "uid" else f"cn: {user.name}"
        password = _ssha(user.password)
        entries.append(
            f"dn: {user.dn}\nobjectClass: inetOrgPerson\n{naming}\nsn: {user.name}\nuserPassword: {password}"
        )
    entries.append(f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups")
    members = "".join(f"\nmember: {USERS[name].dn}" for name in ADMIN_MEMBERS)
    entries.append(f"dn: {ADMIN_GROUP}\nobjectClass: groupOfNames\ncn: vmpooler-admins{members}")
    unique = "".join(f"\nuniqueMember: {USERS[name].dn}" for name in UNIQUE_ADMIN_MEMBERS)
    entries.append(f"dn: {UNIQUE_ADMIN_GROUP}\nobjectClass: groupOfUniqueNames\ncn: vmpooler-unique-admins{unique}")
    return "\n\n".join(entries) + "\n"


def _ssha(password: str) -> str:
    """The ``{SSHA}`` form slappasswd writes: base64(sha1(password + salt) + salt)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _escape_dn_value(value: str) -> str:
    # enough for the names above; the code under test uses ldap3's escape_rdn
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+")


def _schema_dir() -> Path:
    for candidate in (Path("/etc/ldap/schema"), Path("/etc/openldap/schema"), Path("/usr/local/etc/openldap/schema")):
        if (candidate / "core.ldif").exists():
            return candidate
    raise RuntimeError("OpenLDAP schema LDIFs (core.ldif) not found")


def _module_dir() -> Path:
    for candidate in (Path("/usr/lib/ldap"), Path("/usr/lib64/openldap"), Path("/usr/lib/openldap")):
        if any(candidate.glob("back_mdb*")):
            return candidate
    raise RuntimeError("OpenLDAP back_mdb module not found")


def _binary(name: str) -> str | None:
    # slapd and slapadd live in /usr/sbin, which an unprivileged user's PATH often lacks
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def _need(name: str) -> str:
    found = _binary(name)
    if found is None:
        raise RuntimeError(f"{name} not found (install the Debian packages slapd and ldap-utils)")
    return found


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, check=False, timeout=60)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RuntimeError(f"{Path(args[0]).name} {' '.join(args[1:3])} failed ({result.returncode}):\n{output}")
