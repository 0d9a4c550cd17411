"""A tiny OIDC issuer for tests: serves discovery and a JWKS over HTTP on a free port; keys are made at test time."""

from __future__ import annotations

import functools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@functools.cache
def _generated(kid: str, algorithm: str) -> PrivateKey:
    """A key made in this test run, once per kid (an RSA key takes a while to make)."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class LocalIssuer:
    """Signs ID tokens with its keys; ``published`` decides which public keys its JWKS shows."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, PrivateKey]] = {}
        self.published: set[str] = set()
        self.requests: list[str] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    body = {"keys": [issuer.public_jwk(kid) for kid in sorted(issuer.published)]}
                else:
                    self.send_error(404)
                    return
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_key(self, kid: str, algorithm: str = "RS256", *, publish: bool = True) -> None:
        self.keys[kid] = (algorithm, _generated(kid, algorithm))
        if publish:
            self.published.add(kid)

    def public_jwk(self, kid: str) -> dict[str, Any]:
        algorithm, private = self.keys[kid]
        if isinstance(private, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}

    def token(self, kid: str, *, sign_with: str | None = None, **claims: Any) -> str:
        """An ID token from this issuer (``iss``, ``iat``, ``exp`` in 5 min unless given), signed by
        ``kid``'s key, or by ``sign_with``'s while still naming ``kid``."""
        algorithm, private = self.keys[sign_with or kid]
        now = int(time.time())
        payload = {"iss": self.url, "iat": now, "nbf": now, "exp": now + 300, **claims}
        return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": kid})

    def __enter__(self) -> LocalIssuer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
