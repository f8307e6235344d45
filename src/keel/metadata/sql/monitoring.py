"""Monitoring in SQL (the `monitoring` aggregate): reference profiles, window signals, alerts.

Alerts are deduplicated by the unique `open_key` column, set only while an alert is open:
raising the same alert again finds the open row and updates it; a race between two monitors
raising the same new alert makes one insert fail on the unique key, and the loser retries as
an update. Opening and resolving append their audit event in the same transaction.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as UniqueViolation

from keel.domain.digest import Digest
from keel.domain.monitoring import Alert, AlertDraft, MonitorMetric, ReferenceProfile
from keel.domain.run import new_run_id
from keel.errors import Conflict, NotFound
from keel.metadata.base import Monitoring
from keel.metadata.sql.audit import append_event
from keel.metadata.sql.engine import read_transaction, write_transaction
from keel.metadata.sql.schema import alerts, monitor_metrics, reference_profiles

__all__ = ["SqlMonitoring"]

_EVIDENCE_LIMIT: Final = 64_000  # characters of evidence JSON kept per alert


def _json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


class SqlMonitoring(Monitoring):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- reference profiles -----------------------------------------------------------------

    def put_reference(
        self, model: str, version: int, profile: Digest, *, row_count: int, source: str
    ) -> ReferenceProfile:
        with write_transaction(self._engine) as conn:
            existing = self._reference(conn, model, version)
            if existing is not None:
                return existing
            conn.execute(
                insert(reference_profiles).values(
                    model=model,
                    version=version,
                    profile=str(profile),
                    row_count=row_count,
                    source=source,
                    created_at=datetime.now().astimezone(),
                )
            )
            stored = self._reference(conn, model, version)
        assert stored is not None
        return stored

    def reference(self, model: str, version: int) -> ReferenceProfile | None:
        with read_transaction(self._engine) as conn:
            return self._reference(conn, model, version)

    @staticmethod
    def _reference(conn: Connection, model: str, version: int) -> ReferenceProfile | None:
        row = conn.execute(
            select(reference_profiles).where(
                reference_profiles.c.model == model, reference_profiles.c.version == version
            )
        ).first()
        if row is None:
            return None
        return ReferenceProfile(
            model=row.model,
            version=row.version,
            profile=row.profile,
            row_count=row.row_count,
            source=row.source,
            created_at=row.created_at,
        )

    # --- window signals ---------------------------------------------------------------------

    def record_metrics(self, metrics: Sequence[MonitorMetric]) -> None:
        if not metrics:
            return
        now = datetime.now().astimezone()
        windows = {(m.model, m.version, m.window_start, m.window_end) for m in metrics}
        rows = [
            {
                "model": m.model,
                "version": m.version,
                "window_start": m.window_start,
                "window_end": m.window_end,
                "signal": m.signal,
                "subject": m.subject,
                "value": _finite(m.value),
                "detail": _json(m.detail),
                "recorded_at": now,
            }
            for m in metrics
        ]
        with write_transaction(self._engine) as conn:
            # A window monitored again replaces what was recorded for it.
            for model, version, start, end in windows:
                conn.execute(
                    delete(monitor_metrics).where(
                        monitor_metrics.c.model == model,
                        monitor_metrics.c.version == version,
                        monitor_metrics.c.window_start == start,
                        monitor_metrics.c.window_end == end,
                    )
                )
            conn.execute(insert(monitor_metrics), rows)

    def metrics(
        self,
        model: str,
        *,
        signal: str | None = None,
        subject: str | None = None,
        version: int | None = None,
        since: datetime | None = None,
    ) -> builtins.list[MonitorMetric]:
        query = select(monitor_metrics).where(monitor_metrics.c.model == model)
        if signal is not None:
            query = query.where(monitor_metrics.c.signal == signal)
        if subject is not None:
            query = query.where(monitor_metrics.c.subject == subject)
        if version is not None:
            query = query.where(monitor_metrics.c.version == version)
        if since is not None:
            query = query.where(monitor_metrics.c.window_end > since)
        query = query.order_by(
            monitor_metrics.c.window_start,
            monitor_metrics.c.version,
            monitor_metrics.c.signal,
            monitor_metrics.c.subject,
        )
        with read_transaction(self._engine) as conn:
            return [_metric(row) for row in conn.execute(query)]

    def window_ends(self, model: str, *, limit: int) -> builtins.list[datetime]:
        m = monitor_metrics.c
        query = (
            select(m.window_end)
            .where(m.model == model, m.window_end > m.window_start)
            .group_by(m.window_end)
            .order_by(m.window_end.desc())
            .limit(limit)
        )
        with read_transaction(self._engine) as conn:
            return [row.window_end for row in conn.execute(query)]

    def latest_metrics(
        self, model: str | None = None, *, signals: Sequence[str] | None = None
    ) -> builtins.list[MonitorMetric]:
        m = monitor_metrics.c
        newest = select(
            m.model, m.version, m.signal, m.subject, func.max(m.window_end).label("end")
        ).group_by(m.model, m.version, m.signal, m.subject)
        if model is not None:
            newest = newest.where(m.model == model)
        if signals is not None:
            newest = newest.where(m.signal.in_(list(signals)))
        latest = newest.subquery()
        query = (
            select(monitor_metrics)
            .join(
                latest,
                and_(
                    m.model == latest.c.model,
                    m.version == latest.c.version,
                    m.signal == latest.c.signal,
                    m.subject == latest.c.subject,
                    m.window_end == latest.c.end,
                ),
            )
            .order_by(m.model, m.version, m.signal, m.subject, m.window_start.desc())
        )
        seen: set[tuple[str, int, str, str]] = set()
        result = []
        with read_transaction(self._engine) as conn:
            for row in conn.execute(query):
                key = (row.model, row.version, row.signal, row.subject)
                if key not in seen:  # two windows may share an end: keep the longest
                    seen.add(key)
                    result.append(_metric(row))
        return result

    # --- alerts -----------------------------------------------------------------------------

    def raise_alert(self, draft: AlertDraft, *, at: datetime, actor: str) -> tuple[Alert, bool]:
        evidence = _json(draft.evidence)
        if len(evidence) > _EVIDENCE_LIMIT:
            evidence = _json({"truncated": True, "summary": evidence[:_EVIDENCE_LIMIT]})
        for _attempt in range(2):
            try:
                with write_transaction(self._engine) as conn:
                    current = conn.execute(
                        select(alerts).where(alerts.c.open_key == draft.key)
                    ).first()
                    if current is not None:
                        conn.execute(
                            update(alerts)
                            .where(alerts.c.id == current.id)
                            .values(
                                last_seen_at=at,
                                value=_finite(draft.value),
                                threshold=_finite(draft.threshold),
                                severity=draft.severity,
                                message=draft.message,
                                owner=draft.owner,
                                version=draft.version,
                                evidence=evidence,
                            )
                        )
                        return self._alert(conn, current.id), False
                    alert_id = new_run_id()
                    conn.execute(
                        insert(alerts).values(
                            id=alert_id,
                            model=draft.model,
                            rule=draft.rule,
                            signal=draft.signal,
                            subject=draft.subject,
                            severity=draft.severity,
                            state="open",
                            open_key=draft.key,
                            owner=draft.owner,
                            version=draft.version,
                            value=_finite(draft.value),
                            threshold=_finite(draft.threshold),
                            message=draft.message,
                            evidence=evidence,
                            opened_at=at,
                            last_seen_at=at,
                            resolved_at=None,
                        )
                    )
                    append_event(
                        conn,
                        actor=actor,
                        kind="alert.opened",
                        model=draft.model,
                        version=draft.version,
                        subject=alert_id,
                        reason=draft.message[:500],
                        evidence={
                            "rule": draft.rule,
                            "signal": draft.signal,
                            "subject": draft.subject,
                            "severity": draft.severity,
                            "owner": draft.owner,
                            "value": _finite(draft.value),
                            "threshold": _finite(draft.threshold),
                        },
                        at=at,
                    )
                    return self._alert(conn, alert_id), True
            except UniqueViolation:
                continue  # another monitor opened it meanwhile: update that one
        raise Conflict(f"could not raise alert {draft.rule} on {draft.subject or draft.model}")

    def resolve_alert(self, alert_id: str, *, at: datetime, actor: str, reason: str) -> Alert:
        with write_transaction(self._engine) as conn:
            current = self._alert(conn, alert_id)
            if not current.is_open:
                return current
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(state="resolved", open_key=None, resolved_at=at)
            )
            append_event(
                conn,
                actor=actor,
                kind="alert.resolved",
                model=current.model,
                version=current.version,
                subject=alert_id,
                reason=reason[:500],
                evidence={
                    "rule": current.rule,
                    "signal": current.signal,
                    "subject": current.subject,
                },
                at=at,
            )
            return self._alert(conn, alert_id)

    def alerts(
        self, *, model: str | None = None, state: str | None = None, limit: int = 100
    ) -> builtins.list[Alert]:
        query = select(alerts)
        if model is not None:
            query = query.where(alerts.c.model == model)
        if state is not None:
            query = query.where(alerts.c.state == state)
        query = query.order_by(alerts.c.opened_at.desc(), alerts.c.id.desc()).limit(limit)
        with read_transaction(self._engine) as conn:
            return [_alert(row) for row in conn.execute(query)]

    def alert(self, alert_id: str) -> Alert:
        with read_transaction(self._engine) as conn:
            return self._alert(conn, alert_id)

    @staticmethod
    def _alert(conn: Connection, alert_id: str) -> Alert:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"no alert {alert_id!r}", hint="`keel alerts list` shows the alerts")
        return _alert(row)


def _metric(row: Row[Any]) -> MonitorMetric:
    return MonitorMetric(
        model=row.model,
        version=row.version,
        window_start=row.window_start,
        window_end=row.window_end,
        signal=row.signal,
        subject=row.subject,
        value=row.value,
        detail=json.loads(row.detail),
        recorded_at=row.recorded_at,
    )


def _alert(row: Row[Any]) -> Alert:
    return Alert(
        id=row.id,
        model=row.model,
        rule=row.rule,
        signal=row.signal,
        subject=row.subject,
        severity=row.severity,
        state=row.state,
        message=row.message,
        owner=row.owner,
        version=row.version,
        value=row.value,
        threshold=row.threshold,
        evidence=json.loads(row.evidence),
        opened_at=row.opened_at,
        last_seen_at=row.last_seen_at,
        resolved_at=row.resolved_at,
    )
