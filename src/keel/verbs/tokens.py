"""`project.create_token()` and `project.revoke_token()`: API tokens, which act over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from keel.verbs._actor import ActorLike, acting_name

if TYPE_CHECKING:
    from keel.workspace import Workspace

__all__ = [
    "NOT_SHOWN_AGAIN",
    "NewToken",
    "RevokedToken",
    "Tokens",
    "create_token",
    "revoke_token",
    "tokens",
]

#: Said with every new token: only its hash is stored.
NOT_SHOWN_AGAIN: Final = (
    "store this token now: it is not shown again (keel keeps only its hash); "
    "anyone holding it acts as its user over HTTP"
)


@dataclass(frozen=True)
class NewToken:
    """A new token: `value`, the secret (`Authorization: Bearer ...`), returned this once;
    `token`, its record as listed (id, user, state, label, times), never the secret."""

    value: str
    token: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "token": self.token, "warning": NOT_SHOWN_AGAIN}


@dataclass(frozen=True)
class RevokedToken:
    """The token's record once revoked."""

    token: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token}


def create_token(
    project: Workspace,
    user: str,
    *,
    label: str | None = None,
    ttl: timedelta | None = timedelta(days=90),
    actor: ActorLike = None,
) -> NewToken:
    """Create an API token for `user`, valid for `ttl` (None: no expiry), `label` saying
    what it is for (as `keel tokens create`). Only a hash of its secret is stored: a lost
    token cannot be shown again, revoke it and create another."""
    from keel.domain.identity import check_user_name, parse_token

    check_user_name(user)
    identities = project.metadata.identities
    value = identities.create_token(user, actor=acting_name(project, actor), label=label, ttl=ttl)
    token_id, _ = parse_token(value)
    return NewToken(value, next(t for t in identities.tokens(user) if t["id"] == token_id))


def revoke_token(project: Workspace, token_id: str, *, actor: ActorLike = None) -> RevokedToken:
    """Revoke a token by its id (the 16 hex characters after `keel_`): it stops working at
    once (as `keel tokens revoke`). Revoking a revoked token changes nothing."""
    identities = project.metadata.identities
    identities.revoke_token(token_id, actor=acting_name(project, actor))
    return RevokedToken(next(t for t in identities.tokens() if t["id"] == token_id))


@dataclass(frozen=True)
class Tokens:
    """API tokens, oldest first, with their state; never their secrets."""

    tokens: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens}


def tokens(project: Workspace, *, user: str | None = None) -> Tokens:
    """API tokens, oldest first, only `user`'s with a user (as `keel tokens list`). A
    malformed user name is a `ConfigError`; a user keel does not know is `NotFound`, naming
    the users it does."""
    return Tokens([dict(token) for token in project.metadata.identities.tokens(user)])
