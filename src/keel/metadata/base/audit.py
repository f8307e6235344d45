"""The append-only, hash-chained audit log."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from keel.domain.audit import AuditEvent, ChainReport

__all__ = ["AuditLog"]


class AuditLog(ABC):
    """The append-only, hash-chained log of every release-relevant event.

    Events are appended by the aggregates that change state, inside the same transaction
    as the change (never through this port), so a change and its event commit together.
    """

    @abstractmethod
    def events(
        self,
        *,
        model: str | None = None,
        kinds: builtins.list[str] | None = None,
        after: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> builtins.list[AuditEvent]:
        """Events with seq > `after`, optionally of one model or some kinds."""

    @abstractmethod
    def head(self) -> tuple[int, str]:
        """The newest event's seq and hash."""

    @abstractmethod
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
        """Append an event that records no other change (an alert, a server's load failure)."""

    @abstractmethod
    def verify(self) -> ChainReport:
        """Recompute the chain and compare it with the stored head."""

    @abstractmethod
    def on_commit(self, listener: Callable[[int, str], None] | None) -> None:
        """Call `listener(seq, hash)` for each event a write transaction appended, once it
        has committed (signed checkpoints follow the head); it must not raise. None stops."""
