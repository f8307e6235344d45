"""Monitoring windows' metrics, reference profiles and alerts."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from keel.domain.digest import Digest
from keel.domain.monitoring import Alert, AlertDraft, MonitorMetric, ReferenceProfile

__all__ = ["Monitoring"]


class Monitoring(ABC):
    """What monitoring keeps: each version's reference profile, the signals of every window
    monitored, and the alerts they raised.

    Alerts are deduplicated by (model, rule, subject): while one is open, raising the same
    again updates it (last seen, value, evidence) instead of adding another; resolving closes
    it, and a later breach opens a new one. Opening and resolving are audit events, written
    in the same transaction, so webhooks and the audit log see every alert.
    """

    @abstractmethod
    def put_reference(
        self, model: str, version: int, profile: Digest, *, row_count: int, source: str
    ) -> ReferenceProfile:
        """Record a version's reference profile; the first one recorded is kept."""

    @abstractmethod
    def reference(self, model: str, version: int) -> ReferenceProfile | None: ...

    @abstractmethod
    def record_metrics(self, metrics: Sequence[MonitorMetric]) -> None:
        """Store window signals in one transaction; a window monitored again is replaced."""

    @abstractmethod
    def metrics(
        self,
        model: str,
        *,
        signal: str | None = None,
        subject: str | None = None,
        version: int | None = None,
        since: datetime | None = None,
    ) -> builtins.list[MonitorMetric]:
        """Stored signals, oldest window first."""

    @abstractmethod
    def window_ends(self, model: str, *, limit: int) -> builtins.list[datetime]:
        """The ends of the model's newest `limit` monitored windows, newest first (windows
        of no length, where freshness is recorded, excluded)."""

    @abstractmethod
    def latest_metrics(
        self, model: str | None = None, *, signals: Sequence[str] | None = None
    ) -> builtins.list[MonitorMetric]:
        """The newest window's value of every (model, version, signal, subject); only those
        of `signals` if given (cheaper: the rest of the history is not read)."""

    @abstractmethod
    def raise_alert(self, draft: AlertDraft, *, at: datetime, actor: str) -> tuple[Alert, bool]:
        """Open an alert, or update the open one with the same key; True when opened."""

    @abstractmethod
    def resolve_alert(self, alert_id: str, *, at: datetime, actor: str, reason: str) -> Alert:
        """Close an open alert (`NotFound` if unknown; resolving a resolved one is a no-op)."""

    @abstractmethod
    def alerts(
        self,
        *,
        model: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first."""

    @abstractmethod
    def alert(self, alert_id: str) -> Alert: ...
