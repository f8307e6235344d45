"""Releases in SQL: alias moves and removals (compare-and-set), rollbacks, the end of a
canary, gate evaluations, release requests and their approvals. Every write appends its
audit event in the same transaction, after taking the model-row lock registration takes
(see `SqlModelRegistry`). One module of about 700 lines on purpose: `SqlReleases`
implements the one `Releases` port, and its writes share the transaction helpers below (the
model-row lock, the compare-and-set move, the request lookups): every write that moves an
alias or decides a request takes the same lock in the same transaction as its audit event,
which is checked by reading them together.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, bindparam, delete, insert, or_, select, update

from keel.domain.audit import AuditEvent
from keel.domain.identity import Actor
from keel.domain.model import check_alias_name, check_model_name
from keel.domain.release import (
    AliasMove,
    Decision,
    GateResult,
    ReleaseRequest,
    check_decider,
    rollback_target,
)
from keel.errors import ConfigError, Conflict, NotFound
from keel.metadata.base import Releases
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.models import _current, _get, _require_model, record_alias_move
from keel.metadata.sql.schema import (
    alias_history,
    approvals,
    audit_events,
    gate_evaluations,
    model_aliases,
    model_versions,
    models,
    release_requests,
)

__all__ = ["SqlReleases", "lock_model"]

#: Shortest request-id prefix accepted where a full id is expected.
_MIN_PREFIX: Final = 6
#: The aliases a canary's end moves (`promote_canary`, `roll_back_canary`).
_PRODUCTION: Final = "production"
_CANARY: Final = "canary"


_LOCK_MODEL = select(models.c.name).where(models.c.name == bindparam("model")).with_for_update()
_VERSION_EXISTS = select(model_versions.c.version).where(
    model_versions.c.model == bindparam("model"), model_versions.c.version == bindparam("version")
)


def lock_model(conn: Connection, model: str) -> None:
    """Take the model-row lock (registrations and alias moves of a model queue here).

    `NotFound` naming the registered models if there is no such model. On SQLite the
    transaction's `BEGIN IMMEDIATE` already serialises every writer, so only existence is
    checked there.
    """
    check_model_name(model)
    if conn.dialect.name == "sqlite":
        _require_model(conn, model)
    elif conn.execute(_LOCK_MODEL, {"model": model}).first() is None:
        _require_model(conn, model)  # raises, naming what exists


def _new_id() -> str:
    return secrets.token_hex(8)


class SqlReleases(Releases):
    """`Releases` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- reading --------------------------------------------------------------------------

    def holder(self, model: str, alias: str) -> int | None:
        check_alias_name(alias)
        with read_transaction(self._engine) as conn:
            _require_model(conn, model)
            return _current(conn, model, alias)

    def history(self, model: str, alias: str) -> builtins.list[AliasMove]:
        with read_transaction(self._engine) as conn:
            _require_model(conn, model)
            return _history(conn, model, alias)

    def evaluation(self, evaluation_id: str) -> builtins.list[GateResult]:
        with read_transaction(self._engine) as conn:
            text = conn.execute(
                select(gate_evaluations.c.results).where(gate_evaluations.c.id == evaluation_id)
            ).scalar()
        if text is None:
            raise NotFound(f"no gate evaluation {evaluation_id!r} is recorded")
        return [GateResult.from_dict(item) for item in json.loads(text)["gates"]]

    def request(self, request_id: str) -> ReleaseRequest:
        with read_transaction(self._engine) as conn:
            return _request(conn, _resolve_request_id(conn, request_id))

    def requests(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[ReleaseRequest]:
        query = select(release_requests.c.id)
        if status is not None:
            query = query.where(release_requests.c.status == status)
        if model is not None:
            check_model_name(model)
            query = query.where(release_requests.c.model == model)
        query = query.order_by(release_requests.c.requested_at.desc(), release_requests.c.id)
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self._engine) as conn:
            ids = builtins.list(conn.execute(query).scalars())
            return [_request(conn, request_id) for request_id in ids]

    # --- writing --------------------------------------------------------------------------

    def record_evaluation(
        self,
        model: str,
        version: int,
        alias: str,
        *,
        holder: int | None,
        results: Sequence[GateResult],
        actor: str,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        check_alias_name(alias)
        evaluation_id = _new_id()
        passed = all(r.passed for r in results)
        document = {"gates": [r.to_dict() for r in results], **dict(extra or {})}
        text = json.dumps(document, sort_keys=True, allow_nan=False, default=str)
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            _get(conn, model, version)
            conn.execute(
                insert(gate_evaluations).values(
                    id=evaluation_id,
                    model=model,
                    version=version,
                    alias=alias,
                    holder=holder,
                    at=now,
                    actor=actor,
                    passed=passed,
                    results=text,
                )
            )
            append_event(
                conn,
                actor=actor,
                kind="gates.evaluated",
                model=model,
                version=version,
                alias=alias,
                subject=evaluation_id,
                evidence={"passed": passed, "holder": holder, **json.loads(text)},
                at=now,
            )
        return evaluation_id

    def move_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        expected_holder: int | None,
        actor: str,
        reason: str | None,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        check_alias_name(alias)
        with write_transaction(self._engine) as conn:
            lock_model(conn, model)
            return _move(conn, model, alias, version, expected_holder, actor, reason, evidence)

    def rollback(self, model: str, alias: str, *, actor: str, reason: str) -> AuditEvent:
        check_alias_name(alias)
        if not reason or not reason.strip():
            raise ConfigError(
                "a rollback needs a reason", problems=[("reason", "must be non-empty")]
            )
        with write_transaction(self._engine) as conn:
            lock_model(conn, model)
            current = _current(conn, model, alias)
            if current is None:
                raise NotFound(
                    f"model {model} has no alias {alias!r}: there is nothing to roll back",
                    hint=f"`keel models show {model}` lists its aliases",
                )
            target = rollback_target(_history(conn, model, alias))
            if target is None or target == current:
                raise Conflict(
                    f"{model}@{alias} has no previous holder to roll back to "
                    f"(it has only ever been v{current})",
                    hint=f"promote another version instead: `keel promote {model}@N --to {alias}`",
                )
            event = append_event(
                conn,
                actor=actor,
                kind="alias.rolled_back",
                model=model,
                version=target,
                alias=alias,
                reason=reason,
                evidence={"from": current, "to": target},
            )
            record_alias_move(
                conn,
                event,
                model=model,
                alias=alias,
                version=target,
                previous=current,
                kind="rollback",
            )
            return event

    def remove_alias(
        self,
        model: str,
        alias: str,
        *,
        expected_holder: int,
        actor: str,
        reason: str,
        evidence: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        check_alias_name(alias)
        _require_reason(reason, "a removal")
        with write_transaction(self._engine) as conn:
            lock_model(conn, model)
            return _remove(conn, model, alias, expected_holder, actor, reason, evidence)

    def promote_canary(
        self,
        model: str,
        version: int,
        *,
        expected_production: int | None,
        actor: str,
        reason: str,
        evidence: Mapping[str, object],
        evaluation: str | None = None,
    ) -> builtins.list[AuditEvent]:
        _require_reason(reason, "a canary promotion")
        with write_transaction(self._engine) as conn:
            lock_model(conn, model)
            _require_canary(conn, model, version)
            promoted = append_event(
                conn,
                actor=actor,
                kind="canary.promoted",
                model=model,
                version=version,
                alias=_CANARY,
                reason=reason,
                evidence=evidence,
            )
            link: dict[str, object] = {"canary_event": promoted.seq}
            if evaluation is not None:
                link["evaluation"] = evaluation
            moved = _move(
                conn, model, _PRODUCTION, version, expected_production, actor, reason, link
            )
            removed = _remove(conn, model, _CANARY, version, actor, reason, link)
            return [promoted, moved, removed]

    def roll_back_canary(
        self,
        model: str,
        version: int,
        *,
        actor: str,
        reason: str,
        evidence: Mapping[str, object],
    ) -> builtins.list[AuditEvent]:
        _require_reason(reason, "a canary rollback")
        with write_transaction(self._engine) as conn:
            lock_model(conn, model)
            _require_canary(conn, model, version)
            rolled_back = append_event(
                conn,
                actor=actor,
                kind="canary.rolled_back",
                model=model,
                version=version,
                alias=_CANARY,
                reason=reason,
                evidence=evidence,
            )
            link = {"canary_event": rolled_back.seq}
            removed = _remove(conn, model, _CANARY, version, actor, reason, link)
            return [rolled_back, removed]

    def open_request(
        self,
        model: str,
        version: int,
        alias: str,
        *,
        holder: int | None,
        evaluation_id: str,
        actor: str,
        reason: str | None,
        ttl: timedelta,
        required: int,
        roles: Sequence[str],
        evidence: Mapping[str, object] | None = None,
    ) -> ReleaseRequest:
        check_alias_name(alias)
        if required < 1:
            raise ConfigError(
                "a release request needs at least one approval",
                problems=[("release.approvals.required", "must be at least 1")],
            )
        request_id = _new_id()
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            lock_model(conn, model)
            _get(conn, model, version)
            conn.execute(
                insert(release_requests).values(
                    id=request_id,
                    model=model,
                    version=version,
                    alias=alias,
                    holder=holder,
                    evaluation=evaluation_id,
                    requested_by=actor,
                    requested_at=now,
                    expires_at=now + ttl,
                    reason=reason,
                    required=required,
                    roles=json.dumps(sorted(roles)),
                    status="pending",
                )
            )
            append_event(
                conn,
                actor=actor,
                kind="release.requested",
                model=model,
                version=version,
                alias=alias,
                subject=request_id,
                reason=reason,
                evidence={
                    "holder": holder,
                    "evaluation": evaluation_id,
                    "required": required,
                    "roles": sorted(roles),
                    "expires_at": (now + ttl).isoformat(),
                    **dict(evidence or {}),
                },
                at=now,
            )
            return _request(conn, request_id)

    def decide(
        self,
        request_id: str,
        *,
        actor: Actor,
        decision: Decision,
        comment: str | None,
        expected_holder: int | None,
        evaluation_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[ReleaseRequest, AuditEvent | None]:
        moment = now or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            full_id = _resolve_request_id(conn, request_id)
            model = conn.execute(
                select(release_requests.c.model).where(release_requests.c.id == full_id)
            ).scalar_one()
            lock_model(conn, model)
            request = _request(conn, full_id)  # re-read under the lock
            check_decider(request, actor.name, actor.roles, moment)
            conn.execute(
                insert(approvals).values(
                    request_id=full_id,
                    actor=actor.name,
                    decision=decision,
                    comment=comment,
                    roles=json.dumps(sorted(actor.roles)),
                    at=moment,
                )
            )
            kind = "release.approved" if decision == "approve" else "release.rejected"
            approved = len(request.approved_by) + (1 if decision == "approve" else 0)
            append_event(
                conn,
                actor=actor.name,
                kind=kind,
                model=request.model,
                version=request.version,
                alias=request.alias,
                subject=full_id,
                reason=comment,
                evidence={
                    "requested_by": request.requested_by,
                    "roles": sorted(actor.roles),
                    "via": actor.via,
                    "approvals": approved,
                    "required": request.required,
                },
                at=moment,
            )
            moved: AuditEvent | None = None
            if decision == "reject":
                _close(conn, full_id, "rejected", actor.name, f"rejected by {actor.name}", moment)
            elif approved >= request.required:
                evidence: dict[str, object] = {
                    "request": full_id,
                    "approved_by": [*request.approved_by, actor.name],
                    "requested_by": request.requested_by,
                    "evaluation": evaluation_id or request.evaluation,
                }
                if expected_holder != request.holder:
                    evidence["revalidated_against"] = expected_holder
                moved = _move(
                    conn,
                    request.model,
                    request.alias,
                    request.version,
                    expected_holder,
                    actor.name,  # whose decision moved it; the requester is in the evidence
                    request.reason,
                    evidence,
                )
                _close(
                    conn,
                    full_id,
                    "approved",
                    actor.name,
                    f"{request.alias} moved to v{request.version}",
                    moment,
                )
            return _request(conn, full_id), moved

    def close_request(
        self,
        request_id: str,
        *,
        status: str,
        actor: str,
        outcome: str,
        evidence: Mapping[str, object] | None = None,
    ) -> ReleaseRequest:
        kinds = {
            "expired": "release.expired",
            "superseded": "release.superseded",
            "refused": "release.refused",
        }
        if status not in kinds:
            raise ConfigError(
                f"a request is closed as expired, superseded or refused, not {status!r}",
                problems=[("status", "must be expired, superseded or refused")],
            )
        moment = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            full_id = _resolve_request_id(conn, request_id)
            request = _request(conn, full_id)
            lock_model(conn, request.model)
            request = _request(conn, full_id)
            if request.status != "pending":
                raise Conflict(f"request {full_id} is already {request.status}")
            _close(conn, full_id, status, actor, outcome, moment)
            append_event(
                conn,
                actor=actor,
                kind=kinds[status],
                model=request.model,
                version=request.version,
                alias=request.alias,
                subject=full_id,
                reason=outcome,
                evidence=dict(evidence or {}),
                at=moment,
            )
            return _request(conn, full_id)


def _move(
    conn: Connection,
    model: str,
    alias: str,
    version: int,
    expected_holder: int | None,
    actor: str,
    reason: str | None,
    evidence: Mapping[str, object] | None,
) -> AuditEvent:
    """The compare-and-set alias move; the caller holds the model-row lock."""
    if conn.execute(_VERSION_EXISTS, {"model": model, "version": version}).first() is None:
        _get(conn, model, version)  # raises, naming the versions that exist
    current = _current(conn, model, alias)
    if current != expected_holder:
        was = "no version" if expected_holder is None else f"v{expected_holder}"
        now = "no version" if current is None else f"v{current}"
        raise Conflict(
            f"{model}@{alias} changed while this promotion was decided: it was {was} and is "
            f"now {now}; nothing was changed",
            hint=f"run `keel promote {model}@{version} --to {alias}` again to decide against "
            "the new holder",
        )
    if current == version:
        raise Conflict(
            f"{model}@{alias} already points at v{version}",
            hint=f"`keel models show {model}` lists its aliases",
        )
    event = append_event(
        conn,
        actor=actor,
        kind="alias.moved",
        model=model,
        version=version,
        alias=alias,
        reason=reason,
        evidence={"from": current, "to": version, **dict(evidence or {})},
    )
    record_alias_move(conn, event, model=model, alias=alias, version=version, previous=current)
    return event


def _require_reason(reason: str, what: str) -> None:
    if not reason or not reason.strip():
        raise ConfigError(f"{what} needs a reason", problems=[("reason", "must be non-empty")])


def _require_canary(conn: Connection, model: str, version: int) -> None:
    """`Conflict` unless `canary` holds `version`: another checker ended it first."""
    current = _current(conn, model, _CANARY)
    if current != version:
        now = "no version" if current is None else f"v{current}"
        raise Conflict(
            f"{model}@{_CANARY} no longer holds v{version} (it holds {now}): the canary was "
            "ended or replaced meanwhile; nothing was changed",
            hint=f"`keel canary status --model {model}` shows the canary now",
        )


def _remove(
    conn: Connection,
    model: str,
    alias: str,
    expected_holder: int,
    actor: str,
    reason: str,
    evidence: Mapping[str, object] | None,
) -> AuditEvent:
    """The compare-and-set alias removal; the caller holds the model-row lock.

    No `alias_history` row: its kinds are moves and rollbacks (a CHECK constraint), and the
    history is the stack `rollback` replays. The `alias.removed` event is the record."""
    current = _current(conn, model, alias)
    if current != expected_holder:
        now = "no version" if current is None else f"v{current}"
        raise Conflict(
            f"{model}@{alias} changed while its removal was decided: it was v{expected_holder} "
            f"and is now {now}; nothing was changed",
            hint=f"`keel models show {model}` lists its aliases",
        )
    conn.execute(
        delete(model_aliases).where(model_aliases.c.model == model, model_aliases.c.alias == alias)
    )
    return append_event(
        conn,
        actor=actor,
        kind="alias.removed",
        model=model,
        version=current,
        alias=alias,
        reason=reason,
        evidence={"from": current, **dict(evidence or {})},
    )


def _close(
    conn: Connection, request_id: str, status: str, actor: str, outcome: str, at: datetime
) -> None:
    conn.execute(
        update(release_requests)
        .where(release_requests.c.id == request_id)
        .values(status=status, closed_at=at, closed_by=actor, outcome=outcome)
    )


def _history(conn: Connection, model: str, alias: str) -> builtins.list[AliasMove]:
    """Moves and rollbacks (`alias_history`), with removals from the audit log, by seq."""
    rows = conn.execute(
        select(alias_history)
        .where(alias_history.c.model == model, alias_history.c.alias == alias)
        .order_by(alias_history.c.seq)
    )
    moves = [AliasMove(int(r.seq), r.version, r.previous, r.kind) for r in rows]
    events = audit_events.c
    removals = conn.execute(
        select(events.seq, events.version).where(
            events.model == model, events.alias == alias, events.kind == "alias.removed"
        )
    )
    moves += [AliasMove(int(r.seq), r.version, r.version, "remove") for r in removals]
    return sorted(moves, key=lambda move: move.seq)


def _resolve_request_id(conn: Connection, request_id: str) -> str:
    text = request_id.strip().lower()
    if not text or any(c not in "0123456789abcdef" for c in text) or len(text) > 32:
        raise ConfigError(
            f"request id {request_id!r} is invalid: expected hex characters",
            problems=[("request_id", "must be hex characters (an id or a unique prefix)")],
        )
    if len(text) < _MIN_PREFIX:
        raise ConfigError(
            f"request id {request_id!r} is too short: give at least {_MIN_PREFIX} characters",
            problems=[("request_id", f"must be at least {_MIN_PREFIX} characters")],
        )
    found = builtins.list(
        conn.execute(
            select(release_requests.c.id)
            .where(or_(release_requests.c.id == text, release_requests.c.id.startswith(text)))
            .limit(2)
        ).scalars()
    )
    if not found:
        raise NotFound(
            f"no release request {request_id!r}",
            hint="`keel requests list` shows the release requests",
        )
    if len(found) > 1 and text not in found:
        raise ConfigError(
            f"request id prefix {request_id!r} matches more than one request",
            problems=[("request_id", "give more characters")],
        )
    return text if text in found else found[0]


def _request(conn: Connection, request_id: str) -> ReleaseRequest:
    row = conn.execute(select(release_requests).where(release_requests.c.id == request_id)).one()
    decisions = conn.execute(
        select(approvals).where(approvals.c.request_id == request_id).order_by(approvals.c.at)
    ).all()
    return _to_request(row, decisions)


def _to_request(row: Row[Any], decisions: Sequence[Row[Any]]) -> ReleaseRequest:
    return ReleaseRequest(
        id=row.id,
        model=row.model,
        version=row.version,
        alias=row.alias,
        holder=row.holder,
        evaluation=row.evaluation,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        reason=row.reason,
        required=row.required,
        roles=tuple(json.loads(row.roles)),
        status=row.status,
        approvals=tuple((d.actor, d.decision, d.comment, d.at) for d in decisions),
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        outcome=row.outcome,
    )
