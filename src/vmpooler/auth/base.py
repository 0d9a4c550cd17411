"""The authentication backend interface: check a user name and password, and say whether the user is an admin."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login: who, and whether the directory puts them in the configured admin group."""

    user: str
    in_admin_group: bool = False


class AuthBackend(ABC):
    """Checks HTTP basic-auth credentials for the token routes.

    ``authenticate`` returns True or False for good or bad credentials and raises
    ``AuthUnavailable`` (see vmpooler.errors) when the directory cannot be asked, so the API can
    answer 503 rather than 401. It must be bounded in time: no call may hang.

    ``login`` is what the API calls: the same check, answering a ``Login`` (or None for bad
    credentials). A backend that knows groups overrides it to fill ``in_admin_group`` in the same
    round trip; the default has no groups.
    """

    name: str = "base"

    @abstractmethod
    async def authenticate(self, user: str, password: str) -> bool:
        """True when ``password`` is right for ``user``."""

    async def login(self, user: str, password: str) -> Login | None:
        """The login for good credentials, None for bad ones; raises ``AuthUnavailable`` as ``authenticate``."""
        return Login(user) if await self.authenticate(user, password) else None

    async def close(self) -> None:
        return None
