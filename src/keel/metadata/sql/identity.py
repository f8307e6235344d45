"""Users and API tokens in SQL (the `identities` aggregate).

Every change appends its audit event (`user.*`, `token.*`) in the same transaction, so
who granted a role or created a token is on the hash chain. Tokens are stored as their
id and the hash of their secret only: the full token is returned once by
`create_token`, and a copy of the database lets nobody authenticate.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, insert, select, update

from keel.domain.identity import (
    Actor,
    Role,
    check_roles,
    check_user_name,
    hash_secret,
    new_token,
    parse_token,
    secret_matches,
)
from keel.errors import ConfigError, Conflict, NotFound, PermissionDenied
from keel.metadata.base import Identities
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import api_tokens, users
from keel.metadata.sql.statements import insert_ignoring_duplicates

__all__ = ["SqlIdentities"]

#: Longest token label; a label names where a token is used, not a document.
LABEL_LENGTH: Final = 200

_TOKEN_ID = re.compile(r"^[0-9a-f]{16}$")
_HINT_USERS: Final = "`keel users list` shows the users"
_HINT_TOKENS: Final = "`keel tokens list` shows the tokens"
#: Compared against when a token id is unknown, so that an unknown id and a wrong secret
#: take the same time to refuse.
_NO_HASH: Final = hash_secret("")


class SqlIdentities(Identities):
    """`Identities` on SQLite or PostgreSQL.

    Race safety: a change to a user locks its row (`SELECT ... FOR UPDATE`; SQLite's
    `BEGIN IMMEDIATE` serialises writers anyway). Creating a token holds a share lock on
    its user's row, so a concurrent `disable_user`, which updates that row first and then
    revokes the user's tokens, either sees the new token and revokes it, or the creation
    sees the user disabled and refuses.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- users ----------------------------------------------------------------------------

    def add_user(self, name: str, roles: Sequence[Role], *, actor: str) -> None:
        """Create a user with `roles`, or set the roles of an existing one and re-enable it.

        Events: `user.added` for a new user, `user.changed` when an existing one's roles or
        state change; nothing is written when nothing would change.
        """
        check_user_name(name)
        granted = list(check_roles(roles))
        if not granted:
            raise ConfigError(
                f"user {name} needs at least one role",
                problems=[("role", "give at least one role")],
            )
        roles_json = json.dumps(granted)
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            values = {"name": name, "roles": roles_json, "created_at": now, "created_by": actor}
            # RETURNING, not rowcount: drivers disagree on rowcount for a skipped insert.
            added = insert_ignoring_duplicates(conn, users, values, "name")
            if conn.execute(added.returning(users.c.name)).first() is not None:
                append_event(
                    conn, actor=actor, kind="user.added", subject=name, evidence={"roles": granted}
                )
                return
            row = conn.execute(
                select(users.c.roles, users.c.disabled_at)
                .where(users.c.name == name)
                .with_for_update()
            ).one()
            before = json.loads(row.roles)
            if before == granted and row.disabled_at is None:
                return
            conn.execute(
                update(users).where(users.c.name == name).values(roles=roles_json, disabled_at=None)
            )
            append_event(
                conn,
                actor=actor,
                kind="user.changed",
                subject=name,
                evidence={
                    "roles": granted,
                    "previous_roles": before,
                    "re_enabled": row.disabled_at is not None,
                },
            )

    def disable_user(self, name: str, *, actor: str) -> None:
        """Disable a user and revoke its active tokens, so re-enabling it later does not
        bring forgotten tokens back. Disabling a disabled user changes nothing."""
        check_user_name(name)
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(users.c.disabled_at).where(users.c.name == name).with_for_update()
            ).first()
            if row is None:
                raise _unknown_user(conn, name)
            if row.disabled_at is not None:
                return
            conn.execute(update(users).where(users.c.name == name).values(disabled_at=now))
            revoked = builtins.list(
                conn.execute(
                    select(api_tokens.c.id)
                    .where(api_tokens.c.user == name, api_tokens.c.revoked_at.is_(None))
                    .order_by(api_tokens.c.id)
                ).scalars()
            )
            if revoked:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id.in_(revoked)).values(revoked_at=now)
                )
            append_event(
                conn,
                actor=actor,
                kind="user.disabled",
                subject=name,
                evidence={"tokens_revoked": revoked},
                at=now,
            )

    def roles(self, name: str) -> frozenset[str]:
        """The roles of an enabled user; empty for an unknown or disabled one."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(users.c.roles, users.c.disabled_at).where(users.c.name == name)
            ).first()
        if row is None or row.disabled_at is not None:
            return frozenset()
        return frozenset(json.loads(row.roles))

    def users(self) -> builtins.list[dict[str, object]]:
        """Every user by name: roles, creation, `state` (`active` or `disabled`); JSON-ready."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [
            {
                "name": row.name,
                "roles": json.loads(row.roles),
                "state": "active" if row.disabled_at is None else "disabled",
                "created_at": row.created_at.isoformat(),
                "created_by": row.created_by,
                "disabled_at": _iso(row.disabled_at),
            }
            for row in rows
        ]

    # --- tokens ---------------------------------------------------------------------------

    def create_token(
        self, user: str, *, actor: str, label: str | None = None, ttl: timedelta | None = None
    ) -> str:
        """A new token for `user`, returned once in full; only the secret's hash is stored.

        `NotFound` for an unknown user, `Conflict` for a disabled one, `ConfigError` for a
        label over 200 characters or a ttl that is not positive.
        """
        check_user_name(user)
        if label is not None:
            label = label.strip() or None
        if label is not None and (len(label) > LABEL_LENGTH or not label.isprintable()):
            raise ConfigError(
                f"a token label must be at most {LABEL_LENGTH} printable characters",
                problems=[("label", f"at most {LABEL_LENGTH} printable characters")],
            )
        if ttl is not None and ttl <= timedelta(0):
            raise ConfigError(
                "a token's ttl must be positive", problems=[("ttl", "must be positive")]
            )
        token, token_id, secret_hash = new_token()
        now = datetime.now(UTC)
        expires_at = None if ttl is None else now + ttl
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(users.c.disabled_at).where(users.c.name == user).with_for_update(read=True)
            ).first()
            if row is None:
                raise _unknown_user(conn, user)
            if row.disabled_at is not None:
                raise Conflict(
                    f"user {user} is disabled: it cannot get a token",
                    hint=f"re-enable it first: `keel users add {user} --role ROLE`",
                )
            conn.execute(
                insert(api_tokens).values(
                    id=token_id,
                    user=user,
                    secret_hash=secret_hash,
                    label=label,
                    created_at=now,
                    created_by=actor,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            append_event(
                conn,
                actor=actor,
                kind="token.created",
                subject=token_id,
                evidence={"user": user, "label": label, "expires_at": _iso(expires_at)},
                at=now,
            )
        return token

    def revoke_token(self, token_id: str, *, actor: str) -> None:
        """Revoke a token by its id (the 16 hex characters after `keel_`); revoking a
        revoked token changes nothing."""
        if not isinstance(token_id, str) or _TOKEN_ID.match(token_id) is None:
            raise ConfigError(
                f"token id {token_id!r} is invalid: expected 16 lowercase hex characters",
                problems=[("token_id", "must be 16 lowercase hex characters")],
                hint=_HINT_TOKENS,
            )
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(api_tokens.c.user, api_tokens.c.revoked_at)
                .where(api_tokens.c.id == token_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no API token has the id {token_id}", hint=_HINT_TOKENS)
            if row.revoked_at is not None:
                return
            conn.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now)
            )
            append_event(
                conn,
                actor=actor,
                kind="token.revoked",
                subject=token_id,
                evidence={"user": row.user},
                at=now,
            )

    def tokens(self, user: str | None = None) -> builtins.list[dict[str, object]]:
        """Tokens oldest first, never their secrets; JSON-ready. `state` is `active`,
        `revoked`, `expired` or `disabled` (its user is). `NotFound` for an unknown user."""
        query = (
            select(api_tokens, users.c.disabled_at.label("user_disabled_at"))
            .join(users, users.c.name == api_tokens.c.user)
            .order_by(api_tokens.c.created_at, api_tokens.c.id)
        )
        now = datetime.now(UTC)
        with read_transaction(self._engine) as conn:
            if user is not None:
                check_user_name(user)
                if conn.execute(select(users.c.name).where(users.c.name == user)).first() is None:
                    raise _unknown_user(conn, user)
                query = query.where(api_tokens.c.user == user)
            rows = conn.execute(query).all()
        return [_token_document(row, now) for row in rows]

    def authenticate(self, token: str) -> Actor:
        """The actor a token stands for, with its user's roles as they are now.

        `PermissionDenied` says why a token is refused (malformed, unknown, revoked,
        expired, user disabled) and never repeats the secret.
        """
        token_id, secret = parse_token(token)
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(
                    api_tokens.c.secret_hash,
                    api_tokens.c.expires_at,
                    api_tokens.c.revoked_at,
                    users.c.name,
                    users.c.roles,
                    users.c.disabled_at,
                )
                .join(users, users.c.name == api_tokens.c.user)
                .where(api_tokens.c.id == token_id)
            ).first()
        # Compare even for an unknown id, so that timing does not tell which ids exist.
        matches = secret_matches(secret, _NO_HASH if row is None else row.secret_hash)
        if row is None or not matches:
            raise PermissionDenied(
                f"the API token {token_id} is not valid",
                hint="check that the whole token was copied; `keel tokens create USER` makes one",
            )
        # The user first: disabling also revokes, and the user's state is the reason.
        if row.disabled_at is not None:
            raise PermissionDenied(f"user {row.name} is disabled", hint="an admin can re-enable it")
        if row.revoked_at is not None:
            raise PermissionDenied(
                f"the API token {token_id} was revoked at {row.revoked_at.isoformat()}",
                hint="ask an admin for a new token",
            )
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            raise PermissionDenied(
                f"the API token {token_id} expired at {row.expires_at.isoformat()}",
                hint="ask an admin for a new token",
            )
        return Actor(row.name, frozenset(json.loads(row.roles)), via="token")


def _token_document(row: Row[Any], now: datetime) -> dict[str, object]:
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    elif row.user_disabled_at is not None:
        state = "disabled"
    else:
        state = "active"
    return {
        "id": row.id,
        "user": row.user,
        "label": row.label,
        "state": state,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
    }


def _unknown_user(conn: Connection, name: str) -> NotFound:
    known = builtins.list(
        conn.execute(select(users.c.name).order_by(users.c.name).limit(11)).scalars()
    )
    if not known:
        return NotFound(
            f"no user {name!r}: no users exist yet",
            hint=f"add one: `keel users add {name} --role viewer`",
        )
    shown = ", ".join(known[:10]) + (" and more" if len(known) > 10 else "")
    return NotFound(f"no user {name!r} (users: {shown})", hint=_HINT_USERS)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
