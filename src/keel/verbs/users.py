"""`project.add_user()` and `project.disable_user()`: who may act over HTTP, with which roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from keel.verbs._actor import ActorLike, acting_name

if TYPE_CHECKING:
    from keel.domain.identity import Role
    from keel.metadata.base import Identities
    from keel.workspace import Workspace

__all__ = ["DisabledUser", "UserChange", "Users", "add_user", "disable_user", "users"]


@dataclass(frozen=True)
class UserChange:
    """What adding a user did (`added`, `changed` or `unchanged`), and the user now."""

    change: Literal["added", "changed", "unchanged"]
    user: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "user": self.user}


@dataclass(frozen=True)
class DisabledUser:
    """The user once disabled, and the ids of the tokens that disabling revoked."""

    user: dict[str, Any]
    tokens_revoked: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "tokens_revoked": self.tokens_revoked}


def add_user(
    project: Workspace, name: str, *, roles: Sequence[Role], actor: ActorLike = None
) -> UserChange:
    """Add a user with `roles`, or set the roles of an existing one (as `keel users add`):
    the new roles replace the old, and a disabled user is enabled again (its old tokens stay
    revoked). A bad name or an unknown role is a `ConfigError` naming it."""
    from keel.domain.identity import check_roles, check_user_name

    check_user_name(name)
    check_roles(roles)
    identities = project.metadata.identities
    before = _find(identities, name)
    identities.add_user(name, roles, actor=acting_name(project, actor))
    user = _get(identities, name)
    if before is None:
        return UserChange("added", user)
    same = before["roles"] == user["roles"] and before["state"] == user["state"]
    return UserChange("unchanged" if same else "changed", user)


def disable_user(project: Workspace, name: str, *, actor: ActorLike = None) -> DisabledUser:
    """Disable a user (as `keel users disable`): every token of theirs not yet revoked is
    revoked and stops working at once. `add_user` enables them again."""
    from keel.domain.identity import check_user_name

    check_user_name(name)
    identities = project.metadata.identities
    # Disabling revokes every token not yet revoked (expired ones too).
    revoked = [str(t["id"]) for t in identities.tokens(name) if t["revoked_at"] is None]
    identities.disable_user(name, actor=acting_name(project, actor))
    return DisabledUser(_get(identities, name), revoked)


def _find(identities: Identities, name: str) -> dict[str, Any] | None:
    return next((user for user in identities.users() if user["name"] == name), None)


def _get(identities: Identities, name: str) -> dict[str, Any]:
    from keel.errors import NotFound

    user = _find(identities, name)
    if user is None:  # users are never deleted, so only a foreign hand gets here
        raise NotFound(f"user {name} vanished while it was being changed")
    return user


@dataclass(frozen=True)
class Users:
    """Every user by name, with roles, creation and state (`active` or `disabled`)."""

    users: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"users": self.users}


def users(project: Workspace) -> Users:
    """Every user by name with roles and state (as `keel users list`)."""
    return Users([dict(user) for user in project.metadata.identities.users()])
