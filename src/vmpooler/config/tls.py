"""Checks the TLS files a configuration names (the API's certificate, the Redis client's CA, cert and key)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["file_problems", "pair_problems"]


def file_problems(key: str, path: str | None) -> list[str]:
    """``[]`` when ``path`` is unset or readable, else one problem naming ``key`` and the path.

    Checked at start-up so a typo in a mounted secret's path stops the service with the key to fix,
    rather than surfacing later as a TLS handshake failure on the first connection."""
    if path is None:
        return []
    try:
        with Path(path).open("rb"):
            pass
    except OSError as exc:
        return [f"{key}: cannot read {path!r}: {exc.strerror or exc}"]
    return []


def pair_problems(cert_key: str, cert: str | None, key_key: str, key: str | None) -> list[str]:
    """A private key without its certificate is a mistake; a certificate alone may hold its key too."""
    if key is not None and cert is None:
        return [f"{cert_key}: required when {key_key} is set"]
    return file_problems(cert_key, cert) + file_problems(key_key, key)
