"""Who acts: users, their roles, and API tokens. Pure: no storage, no I/O.

Roles say what a user may change over HTTP (and in the UI):

- `viewer` reads everything; every role includes it;
- `labeler` records feedback (delayed labels) and reads: the role of a labelling service,
  which then holds no right to register models;
- `trainer` registers models, runs training and records feedback;
- `deployer` promotes versions (requests releases) and rolls back;
- `approver` approves or rejects release requests;
- `admin` manages users, tokens and webhooks, and may do everything above except approve
  without an approver role where the release policy names roles.

An API token is `keel_<id>_<secret>`: the id is stored as is (to find the token), the
secret only as its SHA-256 hash, so a copy of the database grants nobody access.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from keel.errors import ConfigError, PermissionDenied

__all__ = [
    "ACTIONS",
    "ROLES",
    "Action",
    "Actor",
    "Role",
    "check_roles",
    "check_user_name",
    "hash_secret",
    "new_token",
    "parse_token",
    "require",
    "secret_matches",
]

Role = Literal["viewer", "labeler", "trainer", "approver", "deployer", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "labeler", "trainer", "approver", "deployer", "admin")

Action = Literal["read", "register", "label", "promote", "approve", "rollback", "manage"]
#: Which roles may take each action.
ACTIONS: Final[dict[Action, frozenset[str]]] = {
    "read": frozenset(ROLES),
    "register": frozenset({"trainer", "admin"}),
    # Labels decide measured performance and retraining: not everyone who reads may send them.
    "label": frozenset({"labeler", "trainer", "admin"}),
    "promote": frozenset({"deployer", "admin"}),
    "approve": frozenset({"approver", "admin"}),
    "rollback": frozenset({"deployer", "admin"}),
    "manage": frozenset({"admin"}),
}

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,62}$")
_USER_RULE: Final = (
    "letters, digits, '.', '_', '@', '+' or '-' (at most 63, not starting with a symbol)"
)
_TOKEN = re.compile(r"^keel_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, and with which roles (empty for a CLI user with no user record)."""

    name: str
    roles: frozenset[str] = frozenset()
    via: Literal["cli", "token"] = "cli"

    def can(self, action: Action) -> bool:
        return bool(self.roles & ACTIONS[action])


def check_user_name(name: object) -> str:
    """`name` if it is a valid user name, else `ConfigError` naming the rule."""
    if not isinstance(name, str) or _USER_NAME.match(name) is None:
        raise ConfigError(
            f"user name {name!r} is invalid: expected {_USER_RULE}",
            problems=[("user", f"must be {_USER_RULE}")],
        )
    return name


def check_roles(roles: Iterable[object]) -> tuple[Role, ...]:
    """The roles, sorted and de-duplicated; `ConfigError` naming an unknown one."""
    found: set[Role] = set()
    for role in roles:
        if role not in ROLES:
            raise ConfigError(
                f"unknown role {role!r}: roles are {', '.join(ROLES)}",
                problems=[("role", f"must be one of {', '.join(ROLES)}")],
            )
        found.add(role)
    return tuple(r for r in ROLES if r in found)


def require(actor: Actor, action: Action) -> None:
    """`PermissionDenied` unless the actor holds a role allowed to take `action`."""
    if actor.can(action):
        return
    allowed = ", ".join(sorted(ACTIONS[action]))
    have = ", ".join(sorted(actor.roles)) or "no roles"
    raise PermissionDenied(
        f"{actor.name} may not {action}: it needs one of the roles {allowed}, "
        f"and {actor.name} has {have}",
        hint=f"an admin can grant a role: `keel users add {actor.name} --role ROLE`",
    )


def hash_secret(secret: str) -> str:
    """How a token's secret is stored. Tokens are 256 random bits, so a fast hash suffices."""
    return "sha256:" + hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored: str) -> bool:
    """Constant-time comparison of a presented secret with its stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored)


def new_token() -> tuple[str, str, str]:
    """A fresh token: (the full token shown once, its id, the hash to store)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"keel_{token_id}_{secret}", token_id, hash_secret(secret)


def parse_token(token: str) -> tuple[str, str]:
    """(id, secret) of a well-formed token; `PermissionDenied` for anything else."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise PermissionDenied(
            "the API token is malformed: expected keel_<16 hex>_<43 characters>",
            hint="create one with `keel tokens create USER`",
        )
    return match.group(1), match.group(2)
