"""The authentication backend interface: check a user name and password, nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod


class AuthBackend(ABC):
    """Checks HTTP basic-auth credentials for the token routes.

    ``authenticate`` returns True or False for good or bad credentials and raises
    ``AuthUnavailable`` (see vmpooler.errors) when the directory cannot be asked, so the API can
    answer 503 rather than 401. It must be bounded in time: no call may hang.
    """

    name: str = "base"

    @abstractmethod
    async def authenticate(self, user: str, password: str) -> bool:
        """True when ``password`` is right for ``user``."""

    async def close(self) -> None:
        return None
