"""The audit log in SQL: appending hash-chained events, reading and verifying them.

`append_event` runs inside the caller's write transaction, so an event commits or rolls
back with the change it records (an alias move and its event are one transaction). It
locks the single `audit_head` row first: appends from every process queue there, which
gives gapless sequence numbers in commit order and a chain without forks.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, bindparam, insert, select, update

from keel.domain.audit import (
    EVENT_KINDS,
    AuditEvent,
    ChainReport,
    canonical_evidence,
    event_hash,
    verify_chain,
)
from keel.errors import ConfigError, StoreError
from keel.metadata.base import AuditLog
from keel.metadata.sql.engine import (
    AUDIT_LISTENER,
    after_commit,
    read_transaction,
    write_transaction,
)
from keel.metadata.sql.schema import audit_events, audit_head

__all__ = ["SqlAuditLog", "append_event"]

#: Events read per round trip when verifying, so memory stays flat on long logs.
_PAGE: Final = 5_000


_LOCK_HEAD = (
    select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
)
_INSERT_EVENT = insert(audit_events)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def append_event(
    conn: Connection,
    *,
    actor: str,
    kind: str,
    model: str | None = None,
    version: int | None = None,
    alias: str | None = None,
    subject: str | None = None,
    reason: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event inside the caller's write transaction and return it."""
    if kind not in EVENT_KINDS:
        raise ConfigError(
            f"unknown audit event kind {kind!r}", problems=[("kind", "must be a known event kind")]
        )
    if not actor:
        raise ConfigError(
            "an audit event needs an actor", problems=[("actor", "must be non-empty")]
        )
    evidence_json = canonical_evidence(evidence or {})
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    head = conn.execute(_LOCK_HEAD).first()
    if head is None:  # the migration writes the row; only a hand-edited database lacks it
        raise StoreError(
            "the audit log's head row is missing",
            hint="`keel audit-log verify` checks the log; restore the database from a backup",
        )
    seq = int(head.seq) + 1
    digest = event_hash(
        head.hash,
        seq=seq,
        at=moment,
        actor=actor,
        kind=kind,
        model=model,
        version=version,
        alias=alias,
        subject=subject,
        reason=reason,
        evidence_json=evidence_json,
    )
    conn.execute(
        _INSERT_EVENT,
        {
            "seq": seq,
            "at": moment,
            "actor": actor,
            "kind": kind,
            "model": model,
            "version": version,
            "alias": alias,
            "subject": subject,
            "reason": reason,
            "evidence": evidence_json,
            "prev_hash": head.hash,
            "hash": digest,
        },
    )
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
    listener = conn.get_execution_options().get(AUDIT_LISTENER)
    if listener is not None:
        # After the commit, so a checkpoint never names an event that rolled back, and the
        # transaction never waits on the artifact store.
        after_commit(conn, lambda: listener(seq, digest))
    return AuditEvent(
        seq,
        moment,
        actor,
        kind,
        model,
        version,
        alias,
        subject,
        reason,
        evidence_json,
        head.hash,
        digest,
    )


class SqlAuditLog(AuditLog):
    """`AuditLog` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def events(
        self,
        *,
        model: str | None = None,
        kinds: builtins.list[str] | None = None,
        after: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> builtins.list[AuditEvent]:
        """Events in seq order (or newest first), optionally of one model or some kinds."""
        query = select(audit_events).where(audit_events.c.seq > after)
        if model is not None:
            query = query.where(audit_events.c.model == model)
        if kinds:
            query = query.where(audit_events.c.kind.in_(kinds))
        order = audit_events.c.seq.desc() if newest_first else audit_events.c.seq
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self._engine) as conn:
            return [_to_event(row) for row in conn.execute(query)]

    def record(
        self,
        *,
        actor: str,
        kind: str,
        model: str | None = None,
        version: int | None = None,
        alias: str | None = None,
        subject: str | None = None,
        reason: str | None = None,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Append one event in a transaction of its own."""
        with write_transaction(self._engine) as conn:
            return append_event(
                conn,
                actor=actor,
                kind=kind,
                model=model,
                version=version,
                alias=alias,
                subject=subject,
                reason=reason,
                evidence=evidence,
            )

    def on_commit(self, listener: Callable[[int, str], None] | None) -> None:
        """Call `listener(seq, hash)` for each event a write transaction appended, once it
        has committed (checkpoints); it must not raise. None stops calling."""
        self._engine.update_execution_options(**{AUDIT_LISTENER: listener})

    def head(self) -> tuple[int, str]:
        """The newest event's seq and hash (0 and the genesis hash for an empty log)."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
        return int(row.seq), str(row.hash)

    def verify(self) -> ChainReport:
        """Walk the whole chain in one read transaction (a consistent snapshot)."""
        with read_transaction(self._engine) as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
            if head is None:
                from keel.domain.audit import GENESIS, ChainBreak

                return ChainReport(0, 0, GENESIS, ChainBreak(0, "missing head", "no head row"))
            return verify_chain(_pages(conn), head_seq=int(head.seq), head_hash=str(head.hash))


def _pages(conn: Connection) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = conn.execute(
            select(audit_events)
            .where(audit_events.c.seq > after)
            .order_by(audit_events.c.seq)
            .limit(_PAGE)
        ).all()
        for row in rows:
            yield _to_event(row)
        if len(rows) < _PAGE:
            return
        after = int(rows[-1].seq)


def _to_event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        model=row.model,
        version=row.version,
        alias=row.alias,
        subject=row.subject,
        reason=row.reason,
        evidence_json=row.evidence,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
