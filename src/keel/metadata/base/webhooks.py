"""Webhooks that audit events are delivered to."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Webhook", "Webhooks"]


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscriber that receives audit events by HTTP POST, signed with HMAC-SHA256."""

    id: str
    url: str
    events: tuple[str, ...]  # event kinds, or ("*",)
    created_at: datetime
    created_by: str
    cursor: int  # newest event seq delivered
    failures: int
    last_error: str | None
    disabled_at: datetime | None = None

    def wants(self, kind: str) -> bool:
        return "*" in self.events or kind in self.events


class Webhooks(ABC):
    """Webhook subscriptions and their delivery cursors."""

    @abstractmethod
    def add(
        self, url: str, *, events: Sequence[str], actor: str, secret: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe `url`; returns the webhook and its signing secret (shown once)."""

    @abstractmethod
    def remove(self, webhook_id: str, *, actor: str) -> None: ...

    @abstractmethod
    def list(self) -> builtins.list[Webhook]: ...

    @abstractmethod
    def secret(self, webhook_id: str) -> str: ...

    @abstractmethod
    def delivered(self, webhook_id: str, cursor: int) -> None:
        """Record that every event up to `cursor` reached the subscriber."""

    @abstractmethod
    def failed(self, webhook_id: str, error: str) -> None:
        """Record a failed delivery attempt (the cursor stays, so it is retried)."""
