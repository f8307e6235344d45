"""Users, roles and API tokens."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import timedelta

from keel.domain.identity import Actor, Role

__all__ = ["Identities"]


class Identities(ABC):
    """Users with roles, and the API tokens that act as them (stored hashed)."""

    @abstractmethod
    def add_user(self, name: str, roles: Sequence[Role], *, actor: str) -> None:
        """Create a user, or set the roles of an existing one (events `user.*`)."""

    @abstractmethod
    def disable_user(self, name: str, *, actor: str) -> None:
        """Disable a user: its tokens stop working."""

    @abstractmethod
    def roles(self, name: str) -> frozenset[str]:
        """The roles of an enabled user; empty for an unknown or disabled one."""

    @abstractmethod
    def users(self) -> builtins.list[dict[str, object]]:
        """Every user with roles, creation and state."""

    @abstractmethod
    def create_token(
        self, user: str, *, actor: str, label: str | None = None, ttl: timedelta | None = None
    ) -> str:
        """A new token for `user`, returned once in full; only its hash is stored."""

    @abstractmethod
    def revoke_token(self, token_id: str, *, actor: str) -> None:
        """Revoke a token by its id."""

    @abstractmethod
    def tokens(self, user: str | None = None) -> builtins.list[dict[str, object]]:
        """Tokens (never their secrets), optionally of one user."""

    @abstractmethod
    def authenticate(self, token: str) -> Actor:
        """The actor a presented token stands for; `PermissionDenied` for a malformed,
        unknown, revoked or expired token or a disabled user."""
