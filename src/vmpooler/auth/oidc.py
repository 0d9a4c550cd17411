"""OIDC ID tokens (a CI job's) accepted in place of a vmpooler token: checked against the issuer's keys, given an owner.

A token is checked, in order: its algorithm (RS256 or ES256 only), its issuer (one configured in
``:auth: oidc``), its signing key (by ``kid`` in the issuer's JWKS, fetched once and fetched again when a
token names a key not seen yet), its signature, ``exp``/``nbf``/``iat`` (with the issuer's leeway), its
audience, then the ``allowed`` claims. Each refusal says what to change. PyJWT does the cryptography.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from vmpooler.auth.oidc_config import ACCEPTED_ALGORITHMS, OidcIssuer
from vmpooler.auth.tokens import Identity, token_id
from vmpooler.errors import Forbidden, ServiceUnavailable, Unauthorized

__all__ = ["OidcRejected", "OidcVerifier", "looks_like_jwt"]

log = logging.getLogger("vmpooler.auth")

#: an unknown kid refetches the keys at most this often, so forged kids cannot make us hammer the issuer
REFETCH_INTERVAL_S = 10.0
#: keys are refetched after this long anyway, so a rotated-out key stops being trusted
KEYS_MAX_AGE_S = 3600.0
FETCH_TIMEOUT_S = 5.0
#: no ID token comes near this; a bigger header is refused before any parsing
MAX_TOKEN_BYTES = 16 * 1024


class OidcRejected(Unauthorized):
    """An ID token that does not verify; the message says what to change."""

    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def looks_like_jwt(value: str) -> bool:
    """A compact JWS (three base64url parts, the header a JSON object): never one of our 32-character tokens."""
    return value.startswith("eyJ") and value.count(".") == 2


class _IssuerKeys:
    """One issuer's signing keys by kid, fetched lazily and refetched on an unknown kid (rate-limited)."""

    def __init__(self, issuer: OidcIssuer, http: httpx.AsyncClient, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self.http = http
        self.clock = clock
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at = float("-inf")
        self.attempted_at = float("-inf")
        self.failure: ServiceUnavailable | None = None
        self.lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``; None when the issuer does not publish it. ServiceUnavailable while the
        issuer cannot be asked and the key is not known from before."""
        if kid in self.keys and self.clock() - self.fetched_at <= KEYS_MAX_AGE_S:
            return self.keys[kid]
        async with self.lock:  # concurrent requests with a new kid share one fetch
            now = self.clock()
            wanted = kid not in self.keys or now - self.fetched_at > KEYS_MAX_AGE_S
            # failed fetches count too: an issuer that is down is asked again only every REFETCH_INTERVAL_S
            if wanted and now - self.attempted_at >= REFETCH_INTERVAL_S:
                self.attempted_at = now
                try:
                    await self._fetch()
                    self.failure = None
                except ServiceUnavailable as exc:
                    self.failure = exc  # keys known from before stay usable meanwhile
            if kid not in self.keys and self.failure is not None:
                raise self.failure
            return self.keys.get(kid)

    async def _fetch(self) -> None:
        url = self.issuer.jwks_url or await self._discover()
        document = await self._get_json(url, "its JWKS")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:  # a key type or curve we do not use: skipped, not fatal
                log.info("OIDC issuer %s: key %s skipped: %s", self.issuer.issuer, entry["kid"], exc)
        self.keys = keys
        self.fetched_at = self.clock()

    async def _discover(self) -> str:
        document = await self._get_json(self.issuer.discovery_url, "its discovery document")
        url = document.get("jwks_uri")
        if not isinstance(url, str) or not url:
            raise ServiceUnavailable(f"the OIDC issuer {self.issuer.issuer} publishes no jwks_uri; set jwks_url")
        return url

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            reply = await self.http.get(url, timeout=FETCH_TIMEOUT_S)
            reply.raise_for_status()
            document = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OIDC issuer %s: fetching %s from %s failed: %s", self.issuer.issuer, what, url, exc)
            raise ServiceUnavailable(
                f"cannot fetch {what} of the OIDC issuer {self.issuer.issuer} right now; retry shortly"
            ) from exc
        if not isinstance(document, dict):
            raise ServiceUnavailable(f"{what} of the OIDC issuer {self.issuer.issuer} is not a JSON object")
        return document


class OidcVerifier:
    """Verifies ID tokens of the configured issuers and maps each to an ``Identity``."""

    def __init__(
        self,
        issuers: list[OidcIssuer],
        is_admin: Callable[[str], bool],
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.http = http or httpx.AsyncClient(follow_redirects=False)
        self.is_admin = is_admin
        self.clock = clock
        self.issuers = {issuer.issuer: _IssuerKeys(issuer, self.http, clock) for issuer in issuers}

    @property
    def enabled(self) -> bool:
        return bool(self.issuers)

    async def close(self) -> None:
        await self.http.aclose()

    async def verify(self, token: str) -> Identity:
        """The identity of a valid ID token; OidcRejected (401) or Forbidden (403) saying why not."""
        if len(token) > MAX_TOKEN_BYTES:
            raise OidcRejected(f"the ID token is longer than {MAX_TOKEN_BYTES} bytes; send the token itself")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise OidcRejected(f"the bearer token is not a well-formed JWT ({exc}); send the job's ID token") from exc
        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            raise OidcRejected(
                f"ID tokens signed with {algorithm!r} are refused; the issuer must sign with one of "
                f"{', '.join(ACCEPTED_ALGORITHMS)}"
            )
        keys = self.issuers.get(str(unverified.get("iss")))
        if keys is None:
            trusted = ", ".join(sorted(self.issuers))
            raise OidcRejected(
                f"ID tokens of issuer {unverified.get('iss')!r} are not accepted here (trusted: {trusted}); "
                "ask an admin to add it under :auth: oidc"
            )
        issuer = keys.issuer
        kid = header.get("kid")
        key = await keys.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise OidcRejected(
                f"the ID token's signing key (kid {kid!r}) is not among the keys {issuer.issuer} publishes; "
                "request a fresh token from the issuer"
            )
        claims = self._decode(token, key, str(algorithm), issuer)
        return self._identity(token, claims, issuer)

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str, issuer: OidcIssuer) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcRejected(_what_to_change(exc, issuer)) from exc
        return claims

    def _identity(self, token: str, claims: dict[str, Any], issuer: OidcIssuer) -> Identity:
        for claim, patterns in issuer.allowed.items():
            values = _as_strings(claims.get(claim))
            if not any(fnmatch.fnmatchcase(value, pattern) for value in values for pattern in patterns):
                raise Forbidden(
                    f"this ID token's {claim} {', '.join(values) or '(missing)'} may not use vmpooler "
                    f"(allowed: {', '.join(patterns)}); ask an admin to allow it under :auth: oidc"
                )
        owner = claims.get(issuer.owner_claim)
        if not isinstance(owner, str) or not owner:
            raise OidcRejected(f"the ID token has no {issuer.owner_claim!r} claim to name the VMs' owner by")
        groups = _as_strings(claims.get(issuer.group_claim)) if issuer.group_claim else []
        admin = self.is_admin(owner) or any(self.is_admin(group) for group in groups)
        # the id of this very token: VMs checked out with it are listed by it, as with our tokens
        return Identity(owner, token_id(token), admin)


#: what a caller is told for each refusal of PyJWT's (the first class that matches); the rest: its own words
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the ID token has expired; request a fresh one right before calling vmpooler"),
    (jwt.ImmatureSignatureError, "the ID token is not valid yet ({exc}); check the clocks of issuer and server"),
    (
        jwt.InvalidAudienceError,
        "the ID token's audience is not {audience!r}; request the token with that audience "
        "(GitHub: core.getIDToken(audience); GitLab: id_tokens: aud)",
    ),
    (jwt.MissingRequiredClaimError, "the ID token lacks the {claim!r} claim; it cannot be accepted"),
    (
        jwt.InvalidSignatureError,
        "the ID token's signature does not verify against {issuer}'s key; it was altered or signed by someone else",
    ),
)


def _what_to_change(exc: jwt.PyJWTError, issuer: OidcIssuer) -> str:
    template = next((text for kind, text in _REFUSALS if isinstance(exc, kind)), "the ID token is not valid: {exc}")
    audience = " or ".join(issuer.audience)
    return template.format(exc=exc, audience=audience, claim=getattr(exc, "claim", ""), issuer=issuer.issuer)


def _as_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    if isinstance(value, (int, float, bool)):
        return [str(value)]
    return []
