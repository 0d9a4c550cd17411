"""Who is calling: HTTP basic auth checked by the auth backend, X-AUTH-TOKEN checked by the token service,
and an OIDC ID token (``Authorization: Bearer``, or in X-AUTH-TOKEN) checked by the OIDC verifier.

Either way the answer says whether the caller is an admin: named in ``:auth: admins`` or, for basic
auth and for tokens made since, in the backend's admin group (see vmpooler.auth.policy).
"""

from __future__ import annotations

import base64
import binascii
import logging

from starlette.requests import Request

from vmpooler.api.audit_notes import note
from vmpooler.auth.base import AuthBackend, Login
from vmpooler.auth.oidc import OidcVerifier, looks_like_jwt
from vmpooler.auth.tokens import Identity, TokenService
from vmpooler.errors import AuthUnavailable, BadRequest, NotFound, ServiceUnavailable, Unauthorized

log = logging.getLogger("vmpooler.api")

TOKEN_HEADER = "X-AUTH-TOKEN"


class ApiAuth:
    """Authentication is on only when the configuration has an ``:auth:`` section."""

    def __init__(self, backend: AuthBackend | None, tokens: TokenService, oidc: OidcVerifier | None = None) -> None:
        self.backend = backend
        self.tokens = tokens
        self.oidc = oidc

    @property
    def enabled(self) -> bool:
        """A password backend, OIDC issuers, or both: callers are then told apart."""
        return self.backend is not None or (self.oidc is not None and self.oidc.enabled)

    async def close(self) -> None:
        """Close the OIDC verifier's HTTP client (the app's lifespan calls this at shutdown)."""
        if self.oidc is not None:
            await self.oidc.close()

    def require_enabled(self) -> None:
        if not self.enabled:
            raise NotFound("token authentication is not configured on this server (no :auth: section)")

    def password_backend(self) -> AuthBackend:
        """What checks basic-auth passwords; NotFound saying why when this server takes none."""
        self.require_enabled()
        if self.backend is None:
            raise NotFound(
                "this server takes no passwords (:auth: has only oidc, no provider), so tokens cannot be made "
                "or revoked with basic auth; send your CI job's OIDC ID token as 'Authorization: Bearer <token>'"
            )
        return self.backend

    def is_admin(self, login: Login) -> bool:
        return login.in_admin_group or self.tokens.policy.is_admin(login.user)

    async def basic_login(self, request: Request) -> Login:
        """The login of valid basic-auth credentials; 401 otherwise, 503 when LDAP is down."""
        backend = self.password_backend()
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise Unauthorized("send your user name and password with HTTP basic auth (curl -u USER)")
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadRequest("malformed basic auth header") from exc
        if not sep or not user:
            raise Unauthorized("basic auth needs a user name and a password")
        try:
            login = await backend.login(user, password)
        except AuthUnavailable as exc:
            log.warning("auth backend unavailable: %s", exc)
            raise ServiceUnavailable(f"cannot check your password right now: {exc}") from exc
        if login is None:
            raise Unauthorized(f"wrong user name or password for {user!r}")
        note(request, user=login.user)
        return login

    async def token(self, request: Request, *, required: bool) -> Identity | None:
        """The caller's token identity. Without ``:auth:`` a token is ignored, as the original does."""
        if not self.enabled:
            return None
        value = request.headers.get(TOKEN_HEADER) or _bearer(request)
        if not value:
            if required:
                raise Unauthorized(f"this needs a token: send it in the {TOKEN_HEADER} header (POST /token makes one)")
            return None
        value = value.strip()
        if self.oidc is not None and self.oidc.enabled and looks_like_jwt(value):
            identity = await self.oidc.verify(value)
        else:
            found = await self.tokens.verify(value)
            if found is None:
                raise Unauthorized(f"the {TOKEN_HEADER} token is not valid (unknown or deleted)")
            identity = found
        note(request, user=identity.user)
        return identity


def _bearer(request: Request) -> str | None:
    """The credential of ``Authorization: Bearer <credential>`` (basic auth is the token routes' business)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return (credential.strip() or None) if scheme.lower() == "bearer" else None
