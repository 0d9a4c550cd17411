"""The original's development backend: any user whose password differs from the user name passes."""

from __future__ import annotations

from vmpooler.auth.base import AuthBackend


class DummyAuth(AuthBackend):
    """For development and tests only: never configure it where real users reach the service."""

    name = "dummy"

    async def authenticate(self, user: str, password: str) -> bool:
        return bool(user) and bool(password) and user != password
