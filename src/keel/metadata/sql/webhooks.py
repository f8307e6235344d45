"""Webhook subscriptions in SQL (the `webhooks` aggregate): where audit events are POSTed.

Adding and removing a subscription appends its audit event (`webhook.added`,
`webhook.removed`) in the same transaction, with the URL and event kinds as evidence and
never the secret. A new subscription's cursor is the seq of its own `webhook.added`
event, taken under the audit head's lock, so it receives exactly the events committed
after it. Delivering is `keel.events.deliver_webhooks`; this module only keeps the state.

Secrets are sealed at rest when the store is given a `SecretSealer` (a `keel.Project`
always gives it the Fernet key of its keys folder, `keel.keys`): whoever reads the
database, or a backup of it, cannot sign requests the receivers would trust. A secret
stored in plain text before sealing existed keeps working and is sealed on the next write
to its row (a delivery, successful or not).
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from keel.domain.audit import EVENT_KINDS
from keel.errors import ConfigError, NotFound
from keel.metadata.base import Webhook, Webhooks
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import webhooks

__all__ = ["SecretSealer", "SqlWebhooks", "check_events", "check_webhook_url"]

#: What a sealed secret starts with (`keel.keys.SECRET_PREFIX`); anything else is plain text.
SEALED_PREFIX: Final = "fernet:"
#: The stored last error is for a person reading `keel webhooks list`, not a log.
ERROR_LENGTH: Final = 500

_ID = re.compile(r"^[0-9a-f]{16}$")
_HINT_LIST: Final = "`keel webhooks list` shows the webhooks"


class SecretSealer(Protocol):
    """Encrypts secrets for the database and decrypts them back (`keel.keys.SecretBox`)."""

    def seal(self, plaintext: str) -> str: ...

    def open(self, stored: str, *, what: str) -> str:
        """The plaintext; a value stored unsealed is returned as it is."""
        ...


def check_webhook_url(url: str) -> str:
    """The URL, stripped; `ConfigError` unless it is http(s) with a host."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is what raises for a malformed one
    except ValueError as exc:
        raise ConfigError(
            f"webhook URL {url!r} is malformed: {exc}",
            problems=[("url", "must be an http:// or https:// URL")],
        ) from exc
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ConfigError(
            f"webhook URL {url!r} contains spaces or control characters",
            problems=[("url", "must not contain spaces or control characters (%-encode them)")],
        )
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"webhook URL {url!r} must start with http:// or https://",
            problems=[("url", "must be an http:// or https:// URL")],
        )
    if not parts.hostname:
        raise ConfigError(
            f"webhook URL {url!r} names no host",
            problems=[("url", "must name a host, e.g. https://hooks.example.com/keel")],
        )
    return text


def check_events(events: Sequence[str]) -> tuple[str, ...]:
    """Event kinds as stored: sorted and unique, or `("*",)` for all (also for none given).

    `ConfigError` naming an unknown kind and listing the known ones.
    """
    if isinstance(events, str):  # a lone string would be taken letter by letter
        events = [events]
    kinds = {kind.strip() for kind in events}
    if not kinds or "*" in kinds:
        return ("*",)
    unknown = sorted(kinds - EVENT_KINDS)
    if unknown:
        known = ", ".join(sorted(EVENT_KINDS))
        raise ConfigError(
            f"unknown event kind {', '.join(repr(k) for k in unknown)}; "
            f"known kinds: {known} (or * for all)",
            problems=[("events", f"unknown event kind {kind!r}") for kind in unknown],
        )
    return tuple(sorted(kinds))


class SqlWebhooks(Webhooks):
    """`Webhooks` on SQLite or PostgreSQL.

    Cursors only move forward: two delivery passes racing each other (two servers
    notifying at once) may each deliver an event, which at-least-once delivery allows,
    but neither can move a cursor back over what the other recorded.
    """

    def __init__(self, engine: Engine, *, sealer: Callable[[], SecretSealer] | None = None) -> None:
        self._engine = engine
        # A factory: the key is read (or created) only by what handles a secret.
        self._sealer = sealer

    def _seal(self, secret: str) -> str:
        return secret if self._sealer is None else self._sealer().seal(secret)

    def _open(self, stored: str, webhook_id: str) -> str:
        if self._sealer is None:
            return stored
        return self._sealer().open(stored, what=f"the secret of webhook {webhook_id}")

    def _seal_if_plain(self, conn: Connection, row: Row[Any]) -> None:
        """Seal a secret stored before sealing existed, in the caller's transaction."""
        if self._sealer is None or str(row.secret).startswith(SEALED_PREFIX):
            return
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == row.id)
            .values(secret=self._sealer().seal(str(row.secret)))
        )

    def add(
        self, url: str, *, events: Sequence[str], actor: str, secret: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe `url` to `events` (kinds, or `*`); returns it and its signing secret.

        The secret is generated (256 random bits) unless given; it is returned here and by
        `secret()`, never listed and never written to the audit log.
        """
        checked_url = check_webhook_url(url)
        kinds = check_events(events)
        if secret is not None and not secret.strip():
            raise ConfigError(
                "a webhook secret must not be empty", problems=[("secret", "must be non-empty")]
            )
        key = secret if secret is not None else secrets.token_urlsafe(32)
        webhook_id = secrets.token_hex(8)
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            event = append_event(
                conn,
                actor=actor,
                kind="webhook.added",
                subject=webhook_id,
                evidence={"url": checked_url, "events": list(kinds)},
                at=now,
            )
            webhook = Webhook(
                id=webhook_id,
                url=checked_url,
                events=kinds,
                created_at=now,
                created_by=actor,
                cursor=event.seq,  # its own event and everything before it are not news
                failures=0,
                last_error=None,
            )
            conn.execute(
                insert(webhooks).values(
                    id=webhook.id,
                    url=webhook.url,
                    secret=self._seal(key),
                    events=json.dumps(list(kinds)),
                    created_at=now,
                    created_by=actor,
                    disabled_at=None,
                    cursor=webhook.cursor,
                    failures=0,
                    last_error=None,
                )
            )
        return webhook, key

    def remove(self, webhook_id: str, *, actor: str) -> None:
        """Delete the subscription and its secret (event `webhook.removed`).

        `NotFound` for an unknown id; the audit log keeps who added and removed it.
        """
        with write_transaction(self._engine) as conn:
            row = _row(conn, webhook_id, lock=True)
            conn.execute(delete(webhooks).where(webhooks.c.id == row.id))
            append_event(
                conn,
                actor=actor,
                kind="webhook.removed",
                subject=row.id,
                evidence={"url": row.url, "events": json.loads(row.events)},
            )

    def list(self) -> builtins.list[Webhook]:
        """Every webhook, oldest first."""
        query = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        with read_transaction(self._engine) as conn:
            return [_to_webhook(row) for row in conn.execute(query)]

    def secret(self, webhook_id: str) -> str:
        """The signing secret; `NotFound` for an unknown id."""
        with read_transaction(self._engine) as conn:
            stored = str(_row(conn, webhook_id).secret)
        return self._open(stored, webhook_id)

    def delivered(self, webhook_id: str, cursor: int) -> None:
        """Move the cursor forward to `cursor` (never back) and clear the failure count."""
        with write_transaction(self._engine) as conn:
            self._seal_if_plain(conn, _row(conn, webhook_id, lock=True))
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id, webhooks.c.cursor < cursor)
                .values(cursor=cursor)
            )
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id)
                .values(failures=0, last_error=None)
            )

    def failed(self, webhook_id: str, error: str) -> None:
        """Count one more consecutive failure and keep its error; the cursor stays."""
        text = " ".join(error.split())
        if len(text) > ERROR_LENGTH:
            text = text[: ERROR_LENGTH - 3] + "..."
        with write_transaction(self._engine) as conn:
            self._seal_if_plain(conn, _row(conn, webhook_id, lock=True))
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id)
                .values(failures=webhooks.c.failures + 1, last_error=text or "unknown error")
            )


def _row(conn: Connection, webhook_id: str, *, lock: bool = False) -> Row[Any]:
    row = None
    if _ID.match(webhook_id):
        query = select(webhooks).where(webhooks.c.id == webhook_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        known = ", ".join(conn.execute(select(webhooks.c.id).order_by(webhooks.c.id)).scalars())
        raise NotFound(f"no webhook {webhook_id!r} (webhooks: {known or 'none'})", hint=_HINT_LIST)
    return row


def _to_webhook(row: Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        events=tuple(json.loads(row.events)),
        created_at=row.created_at,
        created_by=row.created_by,
        cursor=int(row.cursor),
        failures=int(row.failures),
        last_error=row.last_error,
        disabled_at=row.disabled_at,
    )
